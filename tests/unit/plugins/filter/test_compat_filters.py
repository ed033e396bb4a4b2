# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.mlinfra.mlhost.plugins.filter import cuda_driver_compatible, cuda_min_driver, torch_cuda_index

# One file per filter, each holding its own DOCUMENTATION (what ansible-doc and galaxy-importer read).
FILTERS = {}
for _plugin in (cuda_min_driver, cuda_driver_compatible, torch_cuda_index):
    FILTERS.update(_plugin.FilterModule().filters())


def test_filters_of_the_design():
    assert set(FILTERS) == {"cuda_min_driver", "cuda_driver_compatible", "torch_cuda_index"}
    assert FILTERS["cuda_min_driver"]("12.4") == "550.54.14"
    assert FILTERS["cuda_driver_compatible"]("535.261.03", "12.4") is False
    assert FILTERS["torch_cuda_index"]("2.5.1", "12.4") == "cu124"
    assert FILTERS["torch_cuda_index"]("2.5.1", None) == "cpu"


def test_unknown_versions_fail_with_the_filter_name():
    with pytest.raises(AnsibleFilterError) as err:
        FILTERS["cuda_min_driver"]("12.7")
    assert "mlinfra.mlhost.cuda_min_driver" in str(err.value) and "12.7" in str(err.value)


def test_torch_cuda_index_without_a_driver_is_cpu_for_a_release_the_table_lacks():
    assert FILTERS["torch_cuda_index"]("2.13.0", None) == "cpu"
    with pytest.raises(AnsibleFilterError):
        FILTERS["torch_cuda_index"]("2.13.0", "12.8")
