# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The summary of one host's rescue (rescue_summary.py)."""

from __future__ import absolute_import, division, print_function

from ansible.module_utils.common.text.formatters import bytes_to_human

from ansible_collections.sre.cmemgzip.plugins.module_utils import codes
from ansible_collections.sre.cmemgzip.plugins.module_utils.rescue_plan import plan_rescue
from ansible_collections.sre.cmemgzip.plugins.module_utils.rescue_summary import (
    SUMMARY_KEYS, failure_summary, host_summary, summary_of_result, truncate)

from rescue_samples import MiB, file_result, filesystem, located, measurement


def record(before, after=None, runs=(), check_mode=False, **extra):
    result = {'measured': before, 'plan': plan_rescue(before), 'runs': list(runs), 'after': after,
              'check_mode': check_mode, 'thresholds': {'max_used_pct': 90.0}, 'memory': {'mem_total': 1}}
    result.update(extra)
    return result


def summarize(rec, max_files=50):
    return host_summary(rec, max_files=max_files, human=bytes_to_human)


ROOT_FULL = measurement([filesystem('/'), filesystem('/boot', avail=90 * MiB, full_reasons=())],
                        [located('/var/log', '/')])
ROOT_ROOMY = measurement([filesystem('/', avail=20 * MiB, full_reasons=())])
COMPRESSED = [file_result('/var/log/a.log.1', codes.COMPRESSED, size=8 * MiB, saved=7 * MiB, compressed=MiB),
              file_result('/var/log/b.log.1', codes.COMPRESSED, size=6 * MiB, saved=5 * MiB, compressed=MiB),
              file_result('/var/log/small.log', codes.SKIPPED, codes.TOO_SMALL, size=1000),
              file_result('/var/log/c.log', codes.SKIPPED, codes.TARGET_FREE_REACHED),
              file_result('/var/log/d.log', codes.SKIPPED, codes.TARGET_FREE_REACHED)]


def test_every_summary_has_the_same_keys():
    for summary in (summarize(record(ROOT_ROOMY)), failure_summary('h', codes.UNREACHABLE, codes.UNREACHABLE, 'x')):
        assert tuple(summary) == SUMMARY_KEYS


def test_a_host_without_a_full_filesystem_is_healthy():
    summary = summarize(record(ROOT_ROOMY))
    assert summary['status'] == codes.HEALTHY
    assert summary['msg'] == 'no full filesystem among 1 measured'
    assert summary['full'] == [] and summary['filesystems'] == [] and summary['failure_count'] == 0


def test_a_remediated_host_counts_what_it_freed_per_filesystem():
    after = measurement([filesystem('/', avail=12 * MiB, full_reasons=())])
    summary = summarize(record(ROOT_FULL, after, runs=[{'mount': '/', 'failed': False, 'files': COMPRESSED}]))
    assert summary['status'] == codes.REMEDIATED
    assert summary['msg'] == '/ full before; compressed 2 files, saved 12.00 MB; none still full'
    assert summary['files_compressed'] == 2 and summary['bytes_saved'] == 12 * MiB
    assert summary['original_size'] == 14 * MiB and summary['compressed_size'] == 2 * MiB
    assert summary['actions'] == {codes.COMPRESSED: 2, codes.SKIPPED: 3}
    assert summary['skips'] == {'count': 3, 'reasons': {codes.TOO_SMALL: 1, codes.TARGET_FREE_REACHED: 2},
                                'files': [{'path': f['path'], 'reason': f['reason'], 'detail': None}
                                          for f in COMPRESSED[2:]]}
    [fs] = summary['filesystems']
    assert fs['mount'] == '/' and fs['roots'] == ['/var/log'] and fs['note'] is None
    assert fs['before']['avail'] == 0 and fs['after']['avail'] == 12 * MiB and fs['freed'] == 12 * MiB
    assert fs['still_full'] is False and fs['still_full_reasons'] == []
    assert (fs['files_compressed'], fs['bytes_saved'], fs['skipped'], fs['failed']) == (2, 12 * MiB, 3, 0)
    assert summary['memory'] == {'mem_total': 1, 'available': 1000 * MiB, 'limit': 500 * MiB}


def test_a_filesystem_still_full_after_the_run_makes_the_host_still_full():
    summary = summarize(record(ROOT_FULL, ROOT_FULL, runs=[{'mount': '/', 'failed': False, 'files': []}]))
    assert summary['status'] == codes.STILL_FULL and summary['still_full'] == ['/']
    assert summary['filesystems'][0]['still_full_reasons'] == ['used_pct']
    assert summary['msg'].endswith('; still full: /')


def test_a_filesystem_not_measured_again_counts_as_still_full():
    summary = summarize(record(ROOT_FULL, None, runs=[{'mount': '/', 'failed': False, 'files': []}],
                               after_error='cannot measure again: boom'))
    assert summary['status'] == codes.HOST_FAILED
    assert summary['filesystems'][0]['still_full_reasons'] == [codes.NOT_MEASURED]
    assert summary['failures'] == [{'mount': None, 'path': None, 'reason': codes.MEASURE_FAILED,
                                    'detail': 'cannot measure again: boom'}]


def test_a_full_filesystem_left_alone_says_why_in_the_line():
    before = measurement([filesystem('/', full_reasons=('inodes_used_pct',))], [located('/var/log', '/')])
    summary = summarize(record(before, before))
    assert summary['status'] == codes.STILL_FULL
    assert summary['msg'] == '/ full before; compressed 0 files, saved 0.00 Bytes; still full: / (/ inodes_only)'


def test_check_mode_reports_what_would_be_compressed_and_never_still_full():
    would = [file_result('/var/log/a.log.1', codes.WOULD_COMPRESS, size=8 * MiB, saved=7 * MiB, estimated=True)]
    summary = summarize(record(ROOT_FULL, ROOT_FULL, runs=[{'mount': '/', 'failed': False, 'files': would}],
                               check_mode=True))
    assert summary['status'] == codes.FULL and summary['still_full'] == []
    assert summary['msg'] == '/ full; would compress 1 files, saving about 7.00 MB'
    assert summary['would_compress_files'] == [{'path': '/var/log/a.log.1', 'original_size': 8 * MiB,
                                                'bytes_saved': 7 * MiB, 'estimated': True}]


def test_failures_come_from_runs_and_files_and_make_the_host_failed():
    files = [file_result('/var/log/x.log', codes.FAILED, codes.ERROR, detail='[Errno 5] Input/output error')]
    runs = [{'mount': '/', 'failed': True, 'msg': 'freed 0 bytes', 'files': files}]
    summary = summarize(record(ROOT_FULL, ROOT_FULL, runs=runs))
    assert summary['status'] == codes.HOST_FAILED
    assert [f['reason'] for f in summary['failures']] == [codes.RUN_FAILED, codes.ERROR]
    assert summary['failure_count'] == 2 and summary['filesystems'][0]['failed'] == 2
    assert summary['msg'].endswith('; 2 failure(s), first: / module_failed freed 0 bytes')


def test_a_host_that_cannot_be_measured_is_failed():
    summary = summarize({'measure_error': 'cannot read the mount table: EPERM', 'check_mode': False})
    assert summary['status'] == codes.HOST_FAILED
    assert summary['msg'].startswith('cannot measure: cannot read the mount table: EPERM; 1 failure(s)')


def test_lists_stop_at_max_files_and_counts_do_not():
    files = [file_result('/var/log/%d.log' % i, codes.SKIPPED, codes.TOO_SMALL) for i in range(5)]
    summary = summarize(record(ROOT_FULL, ROOT_FULL, runs=[{'mount': '/', 'failed': False, 'files': files}]),
                        max_files=2)
    assert summary['skips']['count'] == 5 and len(summary['skips']['files']) == 2
    assert summary['skips']['reasons'] == {codes.TOO_SMALL: 5}


def test_a_new_kind_of_action_is_counted_without_a_change():
    files = [file_result('/var/log/live.log', 'truncated_live')]
    summary = summarize(record(ROOT_FULL, ROOT_FULL, runs=[{'mount': '/', 'failed': False, 'files': files}]))
    assert summary['actions'] == {'truncated_live': 1}
    assert summary['filesystems'][0]['actions'] == {'truncated_live': 1}


def test_summary_of_result_explains_a_missing_summary():
    unreachable = summary_of_result({'unreachable': True, 'msg': 'Connection refused'}, host='web1')
    assert (unreachable['host'], unreachable['status']) == ('web1', codes.UNREACHABLE)
    assert unreachable['msg'] == 'unreachable: Connection refused'
    assert unreachable['failures'] == [{'mount': None, 'path': None, 'reason': codes.UNREACHABLE,
                                        'detail': 'Connection refused'}]
    crashed = summary_of_result({'failed': True, 'msg': 'MODULE FAILURE', 'module_stderr': 'Traceback'}, host='h')
    assert crashed['status'] == codes.HOST_FAILED and crashed['failures'][0]['reason'] == codes.RUN_FAILED
    assert summary_of_result({'skipped': True}, host='h')['status'] == codes.NO_RESULT
    assert summary_of_result(None, host='h')['status'] == codes.NO_RESULT


def test_summary_of_result_keeps_a_summary_and_drops_the_rest():
    summary = summarize(record(ROOT_ROOMY))
    result = dict(summary, changed=False, invocation={'module_args': {}}, host=None)
    kept = summary_of_result(result, host='db1')
    assert kept == dict(summary, host='db1')
    assert summary_of_result(kept) == kept


def test_truncate_cuts_at_a_word():
    assert truncate('short', 10) == 'short'
    assert truncate('one two three four', 12) == 'one two...'
    assert truncate('x' * 20, 10) == 'xxxxxxx...'


def test_files_a_capped_result_did_not_list_still_count():
    omitted = {'count': 1002, 'by_reason': [
        {'action': codes.SKIPPED, 'reason': codes.TOO_SMALL, 'count': 1000, 'original_size': 1000, 'compressed_size': 0,
         'bytes_saved': 0},
        {'action': codes.COMPRESSED, 'reason': None, 'count': 2, 'original_size': 8 * MiB, 'compressed_size': MiB,
         'bytes_saved': 3 * MiB}]}
    after = measurement([filesystem('/', avail=15 * MiB, full_reasons=())])
    runs = [{'mount': '/', 'failed': False, 'files': COMPRESSED, 'omitted': omitted}]
    summary = summarize(record(ROOT_FULL, after, runs=runs))
    assert summary['files_compressed'] == 4 and summary['bytes_saved'] == 15 * MiB
    assert summary['skips']['count'] == 1003 and summary['skips']['reasons'][codes.TOO_SMALL] == 1001
    assert len(summary['skips']['files']) == 3 and len(summary['compressed']) == 2
    assert summary['actions'] == {codes.COMPRESSED: 4, codes.SKIPPED: 1003}
    assert summary['filesystems'][0]['files_compressed'] == 4
