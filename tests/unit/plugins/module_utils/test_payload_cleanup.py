# SPDX-License-Identifier: GPL-3.0-or-later
from ansible_collections.sre.cmemgzip.plugins.module_utils.payload_cleanup import own_payload_dir


def test_own_payload_dir_from_the_module_path_inside_the_zip():
    inside = ('/dev/shm/ansible_sre.cmemgzip.cmemgzip_payload_k2j4x9q1/ansible_sre.cmemgzip.cmemgzip_payload.zip/'
              'ansible_collections/sre/cmemgzip/plugins/module_utils/payload_cleanup.py')
    assert own_payload_dir(inside) == '/dev/shm/ansible_sre.cmemgzip.cmemgzip_payload_k2j4x9q1'


def test_no_payload_dir_outside_ansiballz():
    assert own_payload_dir('/work/ansible_collections/sre/cmemgzip/plugins/module_utils/payload_cleanup.py') is None
    other = ('/tmp/ansible_other.coll.mod_payload_x/ansible_other.coll.mod_payload.zip/ansible_collections/sre/'
             'cmemgzip/plugins/module_utils/payload_cleanup.py')
    assert own_payload_dir(other) is None
