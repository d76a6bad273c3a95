# SPDX-License-Identifier: GPL-3.0-or-later
from ansible_collections.sre.cmemgzip.plugins.module_utils import codes
from ansible_collections.sre.cmemgzip.plugins.module_utils.result_cap import cap_results
from ansible_collections.sre.cmemgzip.plugins.module_utils.results import FileResult


def _result(index, action, reason=None, size=10, saved=0):
    return FileResult('/f%d' % index, action=action, reason=reason, original_size=size, bytes_saved=saved)


def test_under_the_cap_everything_is_listed():
    results = [_result(i, codes.SKIPPED, codes.TOO_SMALL) for i in range(3)]
    assert cap_results(results, 3) == (results, {'count': 0, 'by_reason': []})
    assert cap_results(results, 0)[0] == results


def test_failures_then_compressed_then_actionable_skips_are_kept_in_run_order():
    results = [_result(0, codes.SKIPPED, codes.TOO_SMALL), _result(1, codes.COMPRESSED, saved=5),
               _result(2, codes.SKIPPED, codes.OPEN), _result(3, codes.FAILED, codes.ERROR),
               _result(4, codes.SKIPPED, codes.EXCLUDED), _result(5, codes.COMPRESSED, saved=7)]
    listed, omitted = cap_results(results, 4)
    assert [r.path for r in listed] == ['/f1', '/f2', '/f3', '/f5']
    assert omitted['count'] == 2
    assert sorted((g['reason'], g['count'], g['original_size']) for g in omitted['by_reason']) == [
        (codes.EXCLUDED, 1, 10), (codes.TOO_SMALL, 1, 10)]


def test_omitted_groups_sum_sizes_and_savings():
    results = [_result(i, codes.COMPRESSED, size=100, saved=60) for i in range(5)]
    listed, omitted = cap_results(results, 2)
    assert len(listed) == 2
    assert omitted == {'count': 3, 'by_reason': [{'action': codes.COMPRESSED, 'reason': None, 'count': 3,
                                                  'original_size': 300, 'compressed_size': 0, 'bytes_saved': 180}]}
