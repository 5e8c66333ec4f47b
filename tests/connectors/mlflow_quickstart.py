"""MLflow's tracking quickstart, as its documentation writes it, run by the MLflow under test.

`python mlflow_quickstart.py TRACKING_URI` from an environment with MLflow and
scikit-learn (the test's own, built by `tests.venvs`): a logistic regression
on iris with its params, a metric, the training data logged as a dataset
(`mlflow.data.from_pandas` + `log_input(context="training")`) and the model
logged and registered as `tracking-quickstart`. Prints what it logged, as JSON.
"""

import json
import sys

import mlflow
import pandas as pd
from mlflow.models import infer_signature
from sklearn import datasets
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
from sklearn.model_selection import train_test_split

mlflow.set_tracking_uri(sys.argv[1])
mlflow.set_registry_uri(sys.argv[1])
X, y = datasets.load_iris(return_X_y=True, as_frame=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=42)
params = {"solver": "lbfgs", "max_iter": 1000, "random_state": 8888}
lr = LogisticRegression(**params)
lr.fit(X_train, y_train)
accuracy = accuracy_score(y_test, lr.predict(X_test))

mlflow.set_experiment("MLflow Quickstart")
with mlflow.start_run() as run:
    mlflow.log_params(params)
    mlflow.log_metric("accuracy", accuracy)
    train = pd.concat([X_train, y_train], axis=1)
    dataset = mlflow.data.from_pandas(
        train, source="sklearn.datasets.load_iris", name="iris-train", targets="target"
    )
    mlflow.log_input(dataset, context="training")
    mlflow.set_tag("Training Info", "Basic LR model for iris data")
    signature = infer_signature(X_train, lr.predict(X_train))
    # MLflow 3 names the model (`name=`); MLflow 2 gives its artifact path.
    major = int(mlflow.__version__.split(".")[0])
    where = {"name": "iris_model"} if major >= 3 else {"artifact_path": "iris_model"}
    info = mlflow.sklearn.log_model(
        sk_model=lr,
        signature=signature,
        registered_model_name="tracking-quickstart",
        **where,
    )
print(
    json.dumps(
        {
            "mlflow": mlflow.__version__,
            "run_id": run.info.run_id,
            "model_uri": info.model_uri,
            "dataset": {"name": dataset.name, "digest": dataset.digest},
            "columns": list(train.columns),
            "rows": len(train),
        }
    )
)
