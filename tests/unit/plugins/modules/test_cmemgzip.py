# SPDX-License-Identifier: GPL-3.0-or-later
import pytest

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


@pytest.mark.parametrize('threads', [-1, 1025])
def test_threads_out_of_range_is_a_clear_error(threads):
    params = {spec: value.get('default') for spec, value in cmemgzip.ARGUMENT_SPEC.items()}
    params.update(path=['/var/log'], threads=threads)
    with pytest.raises(ValueError, match='threads must be between 0'):
        cmemgzip.build_options(params, check_mode=False)


def test_new_options_reach_the_engine():
    params = {spec: value.get('default') for spec, value in cmemgzip.ARGUMENT_SPEC.items()}
    params.update(path=['/var/log'], min_age_patterns=['*.log'], max_file_results=5, threads=1024)
    options = cmemgzip.build_options(params, check_mode=False)
    assert (options.min_age_patterns, options.max_file_results, options.threads) == (['*.log'], 5, 1024)
    params.update(max_file_results=-1)
    with pytest.raises(ValueError, match='max_file_results'):
        cmemgzip.build_options(params, check_mode=False)


def test_documentation_parses_and_lists_every_option():
    """ansible-doc refuses the module when DOCUMENTATION is not YAML (": " inside a plain scalar)."""
    import yaml
    documentation = yaml.safe_load(cmemgzip.DOCUMENTATION)
    yaml.safe_load(cmemgzip.EXAMPLES)
    assert set(documentation['options']) == set(cmemgzip.ARGUMENT_SPEC)
