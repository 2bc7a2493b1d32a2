"""One process of a data-parallel LoRA fit (the torchrun workers of tests/finetune/test_ddp.py).

``torchrun --standalone --nproc_per_node=2 tests/finetune/_ddp_worker.py DATA OUT`` fits a
``LoRAPairwiseRanker(distributed=True)`` on the ``(X, y, params)`` pickled in DATA (after a fit
that must fail: rank 1 given other labels) with row batches, then again with image blocks (a second process group in the same processes). Every rank
writes its histories and trained tensors to ``OUT/rank<r>.joblib``; rank 0 alone saves the
fitted model to ``OUT/model.joblib``.
"""

from __future__ import annotations

import os
import sys


def main(data: str, out: str) -> None:
    import joblib

    from skpercept.finetune import LoRAPairwiseRanker

    X, y, params = joblib.load(data)
    rank = int(os.environ["RANK"])
    # Ranks given different labels must all refuse to train (none may hang waiting).
    shuffled = y.iloc[::-1].set_axis(y.index) if rank == 1 else y
    try:
        LoRAPairwiseRanker(distributed=True, **params).fit(X, shuffled)
        refused = ""
    except ValueError as exc:
        refused = str(exc)
    rows = LoRAPairwiseRanker(distributed=True, **params).fit(X, y)
    blocks = LoRAPairwiseRanker(
        distributed=True, **{**params, "batching": "images", "early_stopping": False, "max_epochs": 2}
    ).fit(X, y)
    report = {
        "refused": refused,
        "history": [
            {k: h[k] for k in ("train_loss", "valid_loss", "train_batch_count")} for h in rows.history_
        ],
        "rows": rows._trainable_state(),
        "blocks": blocks._trainable_state(),
        "blocks_history": [h["train_loss"] for h in blocks.history_],
    }
    joblib.dump(report, os.path.join(out, f"rank{rank}.joblib"))
    if rank == 0:
        joblib.dump(rows, os.path.join(out, "model.joblib"))


if __name__ == "__main__":
    main(*sys.argv[1:3])
