# SPDX-License-Identifier: GPL-3.0-or-later
from ansible_collections.sre.cmemgzip.plugins.modules import cmemgzip


def test_build_options_converts_units():
    params = {spec: value.get('default') for spec, value in cmemgzip.ARGUMENT_SPEC.items()}
    params.update(path=['/var/log'], min_size='2M', memory_limit='512M', target_free='10%')
    options = cmemgzip.build_options(params, check_mode=True)
    assert options.paths == ['/var/log']
    assert options.min_size == 2 * 1024 * 1024
    assert options.memory_limit == 512 * 1024 * 1024
    assert options.target_free_percent == 10.0
    assert options.check_mode is True
