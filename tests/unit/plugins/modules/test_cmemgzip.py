# SPDX-License-Identifier: GPL-3.0-or-later
import pytest

from ansible_collections.sre.cmemgzip.plugins.modules import cmemgzip


@pytest.mark.parametrize('text, seconds', [('0', 0), ('90', 90), ('30s', 30), ('10m', 600), ('2h', 7200),
                                           ('1d', 86400), ('1w', 604800)])
def test_parse_age(text, seconds):
    assert cmemgzip.parse_age(text) == seconds


def test_parse_age_rejects_garbage():
    with pytest.raises(ValueError):
        cmemgzip.parse_age('soon')


def test_parse_target_free():
    assert cmemgzip.parse_target_free(None) == (None, None)
    assert cmemgzip.parse_target_free('15%') == (None, 15.0)
    assert cmemgzip.parse_target_free('2K') == (2048, None)
    with pytest.raises(ValueError):
        cmemgzip.parse_target_free('150%')


def test_build_options_converts_units():
    params = {spec: value.get('default') for spec, value in cmemgzip.ARGUMENT_SPEC.items()}
    params.update(path=['/var/log'], min_size='2M', memory_limit='512M', target_free='10%')
    options = cmemgzip.build_options(params, check_mode=True)
    assert options.min_size == 2 * 1024 * 1024
    assert options.memory_limit == 512 * 1024 * 1024
    assert options.target_free_percent == 10.0
    assert options.check_mode is True
