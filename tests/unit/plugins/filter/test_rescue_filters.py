# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The filters sre.cmemgzip.rescue_plan, rescue_summary and fleet_report."""

from __future__ import absolute_import, division, print_function

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.sre.cmemgzip.plugins.filter import fleet_report, rescue_plan, rescue_summary
from ansible_collections.sre.cmemgzip.plugins.module_utils import codes
from ansible_collections.sre.cmemgzip.plugins.module_utils.rescue_summary import failure_summary

from rescue_samples import MiB, filesystem, located, measurement


def the_filter(plugin, name):
    return plugin.FilterModule().filters()[name]


def summary(host, status, **counts):
    result = failure_summary(host, codes.NO_RESULT, None, '%s line' % host)
    result.update(status=status, failures=[], failure_count=0, **counts)
    return result


def test_rescue_plan_reads_an_fs_usage_info_result():
    plan_of = the_filter(rescue_plan, 'rescue_plan')
    measured = measurement([filesystem('/')], [located('/var/log', '/')], available=100 * MiB)
    plan = plan_of(measured, memory_limit='16M')
    assert [entry['mount'] for entry in plan['remediate']] == ['/']
    assert plan['memory_limit'] == 16 * MiB
    assert plan_of(measured, memory_fraction=0.1)['memory_limit'] == 10 * MiB


@pytest.mark.parametrize('value, kwargs', [('nope', {}), ({'x': 1}, {}),
                                           (measurement([]), {'memory_limit': 'lots'})])
def test_rescue_plan_refuses_what_it_cannot_read(value, kwargs):
    with pytest.raises(AnsibleFilterError):
        the_filter(rescue_plan, 'rescue_plan')(value, **kwargs)


def test_rescue_summary_names_the_host_of_an_unreachable_result():
    result = the_filter(rescue_summary, 'rescue_summary')({'unreachable': True, 'msg': 'no route'}, host='web1')
    assert (result['host'], result['status']) == ('web1', codes.UNREACHABLE)
    with pytest.raises(AnsibleFilterError):
        the_filter(rescue_summary, 'rescue_summary')(['not', 'a', 'result'])


def test_fleet_report_totals_statuses_and_lines():
    report_of = the_filter(fleet_report, 'fleet_report')
    hostvars = {
        'web1': {'rescue_result': summary('web1', codes.REMEDIATED, files_compressed=3, bytes_saved=10 * MiB,
                                          full=['/'])},
        'db1': {'rescue_result': summary('db1', codes.REMEDIATED, files_compressed=2, bytes_saved=5 * MiB,
                                         full=['/'])},
        'api1': {'rescue_result': summary('api1', codes.HEALTHY)},
        'cache1': {'rescue_result': {'unreachable': True, 'msg': 'Connection refused'}},
        'nohost': {},
    }
    report = report_of(hostvars, hosts=['web1', 'db1', 'api1', 'cache1', 'nohost', 'web1', 'gone'],
                       title='t', generated='2026-11-26T08:00:00Z')
    assert list(report['hosts']) == ['api1', 'cache1', 'db1', 'gone', 'nohost', 'web1']
    assert report['totals']['statuses'] == {codes.HEALTHY: 1, codes.UNREACHABLE: 1, codes.REMEDIATED: 2,
                                            codes.NO_RESULT: 2}
    assert report['totals']['hosts'] == 6 and report['totals']['files_compressed'] == 5
    assert report['totals']['failures'] == 1 and report['totals']['full_filesystems'] == 2
    assert report['lines'][0] == 'api1: healthy - api1 line'
    assert report['lines'][1] == 'cache1: unreachable - unreachable: Connection refused'
    assert report['hosts']['gone']['status'] == codes.NO_RESULT
    assert report['total_line'] == ('fleet: 6 hosts (healthy 1, unreachable 1, remediated 2, no_result 2); '
                                    'compressed 5 files, saved 15.00 MB; 0 filesystems still full; 1 failures')
    assert report['check_mode'] is False and report['title'] == 't'
    assert report['generated'] == '2026-11-26T08:00:00Z'


def test_fleet_report_in_check_mode_counts_what_would_be_saved():
    hostvars = {'web1': {'rescue_result': summary('web1', codes.FULL, would_compress=4, would_save=3 * MiB,
                                                  check_mode=True)}}
    report = the_filter(fleet_report, 'fleet_report')(hostvars, hosts=['web1'])
    assert report['check_mode'] is True
    assert 'would compress 4 files, saving about 3.00 MB' in report['total_line']
    assert report['generated'].endswith('Z')


@pytest.mark.parametrize('variables, hosts', [(['web1'], ['web1']), ({}, 'web1'), ({}, [1])])
def test_fleet_report_refuses_bad_input(variables, hosts):
    with pytest.raises(AnsibleFilterError):
        the_filter(fleet_report, 'fleet_report')(variables, hosts=hosts)
