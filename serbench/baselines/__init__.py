"""Feature baselines of the paper's Table V: standardize + SVM under a speaker-independent protocol."""
from serbench.baselines.run import NAN_POLICY, RunResult, run_baseline, system_name
from serbench.baselines.svm import CLASSIFIERS, BaselineError, make_svm, param_grid, select_model

__all__ = ["run_baseline", "RunResult", "system_name", "NAN_POLICY", "make_svm", "param_grid", "select_model",
           "CLASSIFIERS", "BaselineError"]
