"""Feature baselines of the paper's Table V: standardize + SVM with a speaker-grouped inner CV.

The model selection lives here (:mod:`~serbench.baselines.svm`, :mod:`~serbench.baselines.kernel_grid`);
the systems that run it under a protocol are ``svm-linear``, ``svm-rbf`` and ``svm-liblinear``
(:mod:`serbench.systems.builtin.svm`; ``serbench baseline`` or :func:`serbench.systems.run_baseline`).
"""
from serbench.baselines.svm import CLASSIFIERS, BaselineError, decision_scores, make_svm, param_grid, select_model

__all__ = ["make_svm", "param_grid", "select_model", "decision_scores", "CLASSIFIERS", "BaselineError"]
