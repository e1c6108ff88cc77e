"""May an opened recommender recommend over a data set? The rule of `modelfiles.data_match.check_data`,
applied to a recommender (its recorded training data, or its item vocabulary when it records none)."""

from __future__ import annotations

import pandas as pd

from flowtui.core.modelfiles import fingerprint as data_fingerprint
from flowtui.core.modelfiles.data_match import DataMatch, DataMismatchError, IdSketch, _share_verdict
from flowtui.core.recs.recommender import RecommenderBase

__all__ = ["check_model_data"]


def check_model_data(
    model: RecommenderBase, frame: pd.DataFrame, *, source: str | None = None, allow_other: bool = False
) -> DataMatch:
    """May `model` recommend over `frame`? The rule of `data_match.check_data`: the same data (by
    fingerprint) is fine; other data is fine with a warning when at least `MIN_KNOWN` of its distinct users
    and media are known to the model; otherwise `DataMismatchError` naming both data sets, unless
    `allow_other` (then a warning with the shares). A model that records no training data is compared by
    its item vocabulary. `source` names `frame` in messages."""
    given = source or "the given data"
    if model.trained_fingerprint and data_fingerprint(frame) == model.trained_fingerprint:
        return DataMatch(same=True, user_known=1.0, item_known=1.0)
    desc = model.trained_on
    users: IdSketch | None = desc.users if desc is not None else None
    items: IdSketch | None = desc.items if desc is not None else None
    if items is None and len(model.item_ids_):
        items = IdSketch.of(model.item_ids_, size=len(model.item_ids_))
    trained_on = (
        desc.label() if desc is not None else f"data with fingerprint {model.trained_fingerprint or '?'}"
    )
    shares = [
        None if sketch is None or col not in frame.columns else sketch.known_share(frame[col].to_numpy())
        for sketch, col in ((users, "user_id"), (items, "media_id"))
    ]
    u, i = shares
    known = [x for x in shares if x is not None]
    head = f"not the data this {model.name} model was trained on ({trained_on})"
    if not known:
        if not allow_other:
            raise DataMismatchError(given, f"{head}, and too few of its ids can be compared")
        return DataMatch(False, u, i, f"{given}: {head}; used anyway")
    return _share_verdict(given, head, u, i, allow_other)
