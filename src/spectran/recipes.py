"""A method's recipe in a run: which of the run's settings are at its values, what reports call
the defaults a run used, and the recipe's sparse-catalog variant (:func:`for_catalog`), applied once
the data is read. The recipes themselves are the methods' (``MethodSpec.recipes``, docs/tuning.md);
:func:`spectran.settings.resolve` fills them in."""

from __future__ import annotations

import copy
from typing import Any

from spectran.registry import METHODS
from spectran.settings import RunSettings, resolve


def recipe_values(settings: RunSettings) -> dict[str, Any]:
    """The dotted settings of ``settings`` at their value in the method's recipe (what
    ``model.recipe`` supplies unless a config gives them), for the run's log; a run that
    :func:`for_catalog` switched to the sparse-catalog variant is compared with that variant."""
    if settings.model.recipe == "none":
        return {}
    recipe = _recipe(settings, sparse=_on_sparse_variant(settings))
    now = {dotted: _value(settings, dotted) for dotted in recipe}
    return {dotted: value for dotted, value in now.items() if value == recipe[dotted]}


def recipe_in_effect(settings: RunSettings) -> bool:
    """Whether ``model.recipe`` changes what the run computes: some setting is at the recipe's value,
    or the data can switch it to a sparse-catalog variant. Where it is not, the run is the same run
    as with ``model.recipe=none`` (a method without a recipe on this backbone)."""
    return bool(recipe_values(settings)) or depends_on_catalog(settings)


def recipe_label(settings: RunSettings) -> str:
    """Which defaults the run's method settings came from, for summaries and reports:
    "shared defaults", or "<method>'s <backbone> recipe" (", sparse-catalog variant" after it when
    :func:`for_catalog` applied one; with how many of its values a config changed, when any)."""
    values = recipe_values(settings)
    if not values:
        return "shared defaults"
    variant = _on_sparse_variant(settings)
    recipe = _recipe(settings, sparse=variant)
    changed = f", {len(recipe) - len(values)} of its {len(recipe)} values changed" if len(values) < len(recipe) else ""
    name = f"{settings.model.method}'s {settings.model.backbone} recipe"
    return name + (", sparse-catalog variant" if variant else "") + changed


SPARSE_PER_ITEM = 6.0  # interactions per item below which a catalog is sparse (clothing's 8,900-user sample
# 3.2: SpecTran's recipe overfit it; clothing 10.8, toys 14, beauty 16, office 22, ml-100k 60)


def sparse_catalog(interactions: int, items: int) -> bool:
    """Fewer than :data:`SPARSE_PER_ITEM` interactions (every item of every sequence) per item."""
    return interactions < SPARSE_PER_ITEM * max(1, items)


def depends_on_catalog(settings: RunSettings) -> bool:
    """Whether :func:`for_catalog` can change ``settings``: ``model.recipe=method`` and a method
    with a sparse-catalog variant on this backbone (callers skip reading the data otherwise)."""
    spec = METHODS.spec(settings.model.method)
    return settings.model.recipe == "method" and bool(spec.sparse_recipes.get(settings.model.backbone))


def for_catalog(settings: RunSettings, interactions: int, items: int) -> RunSettings:
    """``settings`` for a catalog of ``items`` items and ``interactions`` interactions: with
    ``model.recipe=method`` on a sparse catalog (:func:`sparse_catalog`), each setting of the
    method's sparse-catalog variant that is still at the recipe's value takes the variant's value;
    otherwise ``settings`` itself. Idempotent: a run folder's stored settings come back unchanged."""
    if not depends_on_catalog(settings) or not sparse_catalog(interactions, items) or _on_sparse_variant(settings):
        return settings
    variant = METHODS.spec(settings.model.method).sparse_recipes[settings.model.backbone]
    at_recipe = recipe_values(settings)
    changes = {dotted: value for dotted, value in variant.items() if dotted in at_recipe}
    if not changes:
        return settings
    raw = settings.to_dict()
    for dotted, value in changes.items():
        section, key = dotted.split(".", 1)
        raw[section][key] = copy.deepcopy(value)
    return resolve(raw)


def _value(settings: RunSettings, dotted: str) -> Any:
    section, key = dotted.split(".", 1)
    return getattr(getattr(settings, section), key)


def _recipe(settings: RunSettings, sparse: bool) -> dict[str, Any]:
    spec = METHODS.spec(settings.model.method)
    recipe = dict(spec.recipes.get(settings.model.backbone, {}))
    return recipe | dict(spec.sparse_recipes.get(settings.model.backbone, {})) if sparse else recipe


def _on_sparse_variant(settings: RunSettings) -> bool:
    """Every setting of the method's sparse-catalog variant holds the variant's value (and differs
    from the recipe's), under ``model.recipe=method``."""
    if not depends_on_catalog(settings):
        return False
    spec = METHODS.spec(settings.model.method)
    recipe = spec.recipes.get(settings.model.backbone, {})
    return all(_value(settings, d) == v and recipe.get(d) != v
               for d, v in spec.sparse_recipes[settings.model.backbone].items())
