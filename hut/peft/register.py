"""What ``import hut.peft`` does to peft: check its version, add ``HUT`` to ``PeftType``, register the method.

peft takes methods defined outside it through ``peft.utils.peft_types.register_peft_method``,
whose ``name`` must be a member of the ``PeftType`` enum; out-of-tree projects extend the enum when
they are imported. ``hut.peft`` relies on peft's ``BaseTuner`` / ``BaseTunerLayer`` internals as well
(the hooks ``_create_and_replace``, ``_replace_module``, ``_prepare_adapter_config``, the structural
state-dict selection), so it is pinned to the versions its tests ran on: :data:`PEFT_REQUIRED`.
"""
from __future__ import annotations

import warnings

from packaging.version import Version

# tests/test_peft*.py and test_host_reads.py pass on peft 0.20.0 and 0.21.2. Below: 0.18 and 0.19 have the hooks but
# not HiRA, which hut.methods needs; 0.17 does not import with transformers 5.
PEFT_MIN, PEFT_BELOW = "0.20.0", "0.22"
PEFT_REQUIRED = f">={PEFT_MIN},<{PEFT_BELOW}"
NAME = "HUT"


def require_peft(version: str, has_register: bool) -> None:
    """One-line error for a peft that cannot take HUT; one-line warning for one newer than tested."""
    if not has_register or Version(version) < Version(PEFT_MIN):
        raise ImportError(f"hut.peft needs peft{PEFT_REQUIRED} (peft.utils.peft_types.register_peft_method and "
                          f"the BaseTuner hooks it was tested with), found peft {version}: "
                          f"pip install 'peft{PEFT_REQUIRED}'")
    if Version(version) >= Version(PEFT_BELOW):
        warnings.warn(f"hut.peft was tested with peft{PEFT_REQUIRED}, found peft {version}: its BaseTuner "
                      "internals may have changed (run tests/test_peft.py)", stacklevel=3)


def add_peft_type(enum_cls: type, name: str = NAME) -> None:
    """Make ``name`` a member of peft's ``PeftType`` (a ``str`` Enum), if it is not one yet.

    Python's ``enum`` has no public way to add a member to an existing class; aenum's ``extend_enum``
    does this, but aenum is not among this project's dependencies for one function. A member is read
    from these places (Python 3.10 to 3.13): the class attribute, ``_member_map_`` (by name),
    ``_value2member_map_`` (by value) and ``_member_names_`` (iteration, ``len``).
    """
    if name in enum_cls.__members__:
        return
    member = str.__new__(enum_cls, name)
    member._name_, member._value_ = name, name
    member.__objclass__ = enum_cls
    member._sort_order_ = len(enum_cls._member_names_)
    type.__setattr__(enum_cls, name, member)  # EnumType.__setattr__ refuses to rebind members, not to add one
    enum_cls._member_names_.append(name)
    enum_cls._member_map_[name] = member
    enum_cls._value2member_map_[name] = member


def register_hut(register_peft_method, enum_cls: type, config_cls: type, model_cls: type) -> None:
    """``register_peft_method(name="hut", ...)`` unless this very pair is registered already (a re-import)."""
    from peft.mapping import PEFT_TYPE_TO_CONFIG_MAPPING, PEFT_TYPE_TO_TUNER_MAPPING

    member = enum_cls(NAME)
    have = (PEFT_TYPE_TO_CONFIG_MAPPING.get(member), PEFT_TYPE_TO_TUNER_MAPPING.get(member))
    if have == (None, None):
        register_peft_method(name=NAME.lower(), config_cls=config_cls, model_cls=model_cls, prefix=model_cls.prefix)
    elif tuple(c.__qualname__ for c in have if c) != (config_cls.__qualname__, model_cls.__qualname__):
        raise ImportError(f"peft already has a method {NAME!r} ({have[0]}, {have[1]}): hut.peft cannot register its own")
