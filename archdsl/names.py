"""Names a spec may give to layers and blocks.

A name becomes a submodule's attribute (``model.stem.conv``), so it must be an identifier and
must not be one of ``nn.Module``'s own attributes: ``as forward`` or a block named
``parameters`` would be refused by torch (or silently shadow the method) when the model is
built. The list is kept here, without importing torch, so that ``archdsl validate`` refuses
such names where they are written; tests/test_hostile.py checks it against the installed torch.
"""

from __future__ import annotations

import re

NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# dir() of the containers the builder makes (nn.Sequential and archdsl.torch_build's merges),
# without dunders: torch 2.x.
_ATTRIBUTES = """
T_destination _apply _backward_hooks _backward_pre_hooks _buffers _call_impl _compiled_call_impl
_eager_outputs _forward_hooks _forward_hooks_always_called _forward_hooks_with_kwargs _forward_owned
_forward_pre_hooks _forward_pre_hooks_with_kwargs _get_backward_hooks _get_backward_pre_hooks
_get_item_by_idx _get_name _is_full_backward_hook _load_from_state_dict
_load_state_dict_post_hooks _load_state_dict_pre_hooks _maybe_warn_non_full_backward_hook
_modules _named_members _non_persistent_buffers_set _parameters
_register_load_state_dict_pre_hook _register_state_dict_hook _replicate_for_data_parallel
_save_to_state_dict _slow_forward _state_dict_hooks _state_dict_pre_hooks _version
_wrapped_call_impl add_module append apply aux_at bfloat16 buffers call_super_init children
compile cpu cuda double dump_patches eval extend extra_repr float forward get_buffer
get_extra_state get_parameter get_submodule half insert into ipu keep load_state_dict modules mtia
named_buffers named_children named_modules named_parameters parameters pop reads
register_backward_hook register_buffer register_forward_hook register_forward_pre_hook
register_full_backward_hook register_full_backward_pre_hook register_load_state_dict_post_hook
register_load_state_dict_pre_hook register_module register_parameter
register_state_dict_post_hook register_state_dict_pre_hook requires_grad_ set_extra_state
set_submodule share_memory sizes state_dict to to_empty train training type xpu zero_grad
"""
MODULE_ATTRIBUTES = frozenset(_ATTRIBUTES.split())


def name_problem(name: object) -> str | None:
    """Why ``name`` cannot name a layer or block, or None when it can."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        return f"{name!r} is not a valid name (letters, digits, _)"
    if name in MODULE_ATTRIBUTES or name.startswith("__"):
        return (f"{name!r} cannot name a layer or block: it is an attribute of torch's "
                f"nn.Module (the built model would break); choose another name")
    return None


class UniqueNames:
    """Unique child names: the second ``conv`` is ``conv_2`` (one counter per name, so naming
    N items is linear in N)."""

    def __init__(self) -> None:
        self.used: set[str] = set()
        self.next: dict[str, int] = {}

    def unique(self, name: str) -> str:
        out = name
        n = self.next.get(name, 2)
        while out in self.used:
            out, n = f"{name}_{n}", n + 1
        self.next[name] = n
        self.used.add(out)
        return out
