# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: mlinfra.mlhost contributors
"""The proxy option of the mlinfra.mlhost modules that download."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  proxy_env:
    description:
      - Proxy variables (V(http_proxy), V(https_proxy), V(no_proxy), ...) for the module's commands and downloads.
      - Give the proxy here (or through C(module_defaults) for the action group C(mlinfra.mlhost.proxied), as the
        P(mlinfra.mlhost.ml_host#role) role does) rather than with the task's C(environment) keyword when it holds a
        password; ansible-core prints a task's environment in its command line at C(-vvv), while this option travels
        inside the module and is C(no_log).
      - A name that is not an environment variable name fails before anything is changed.
    type: dict
    default: {}
"""
