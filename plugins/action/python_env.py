# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: mlinfra.mlhost contributors
"""Action plugin of mlinfra.mlhost.python_env: the module runs as an async job with progress lines on long installs
(plugins/plugin_utils/_progress_action.py); in check mode, or with mlhost_progress false, it runs as any module."""

from __future__ import annotations

from ansible_collections.mlinfra.mlhost.plugins.plugin_utils._progress_action import ProgressAction


class ActionModule(ProgressAction):
    pass
