"""MLflow: ``mlflow.sklearn.log_model`` with its defaults (the skops format), then
``mlflow.pyfunc.load_model`` in another process predicting the same numbers."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("mlflow")
import mlflow
import mlflow.sklearn

from tests.clients._models import fitted_models

KINDS = ["PairwiseRanker", "pair Pipeline", "personal Pipeline"]

# The reading process imports skpercept first: that is what lets skops's defaults rebuild its
# estimators (importing skpercept does not import skops or MLflow).
READ = """
import json, sys
import numpy as np, pandas as pd
import skpercept, mlflow
mlflow.set_tracking_uri(sys.argv[1])
out = {}
for model_uri, path in json.loads(sys.argv[2]):
    model = mlflow.pyfunc.load_model(model_uri)
    X = pd.read_json(path, orient="split") if path.endswith(".json") else np.load(path)
    out[model_uri] = np.asarray(model.predict(X), dtype=float).tolist()
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mlflow")
    models = fitted_models(folder / "images")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    # artifacts in the test's folder (MLflow's default is ./mlruns under the working directory)
    mlflow.set_experiment(
        experiment_id=mlflow.create_experiment("skpercept", artifact_location=(folder / "artifacts").as_uri())
    )
    out = {}
    with mlflow.start_run():
        for kind in KINDS:
            model, X = models[kind]
            info = mlflow.sklearn.log_model(model, name=kind.replace(" ", "_"))  # MLflow's defaults
            if isinstance(X, pd.DataFrame):
                path = folder / f"{kind}.json"
                X.to_json(path, orient="split")
            else:
                path = folder / f"{kind}.npy"
                np.save(path, X)
            out[kind] = (model, X, info, path)
    # one fresh process reads them all back through pyfunc
    jobs = json.dumps([(info.model_uri, str(path)) for _, _, info, path in out.values()])
    result = subprocess.run([sys.executable, "-c", READ, uri, jobs], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    return out, json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("kind", KINDS)
def test_logged_with_defaults_loads_and_predicts_the_same(logged, kind):
    models, read_elsewhere = logged
    model, X, info, _ = models[kind]
    flavor = mlflow.models.get_model_info(info.model_uri).flavors["sklearn"]
    assert flavor["serialization_format"] == "skops"
    assert flavor.get("skops_trusted_types") is None  # nothing had to be trusted by hand
    # in this process, through MLflow's sklearn flavor
    np.testing.assert_array_equal(mlflow.sklearn.load_model(info.model_uri).predict(X), model.predict(X))
    # in a fresh process, through pyfunc
    np.testing.assert_array_equal(np.asarray(read_elsewhere[info.model_uri]), model.predict(X))
