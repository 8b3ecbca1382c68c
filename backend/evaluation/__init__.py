"""Per-company evaluation sets: how well the assistant answers *this* company's questions.

A set is built from the company's own history (:mod:`.sets`): each solved ticket gives its
first customer message as the question, the agent's final public reply as the reference and
the articles that reply links as the relevant sources; feedback adds up-voted answers and
drafts an agent inserted. A run (:mod:`.runner`) asks every question through the assistant
and scores retrieval hit rate, answer F1 against the reference and citation support; runs
are stored under the company's prefix in the object store (:mod:`.store`) and compared
(``helpdesk eval compare``), so a new route, model or retrieval setting that does worse
than the last run fails loudly.
"""

from backend.evaluation.runner import Comparison, EvalRun, compare_runs, run_set
from backend.evaluation.scoring import citation_support, rouge_l, token_f1, tokens
from backend.evaluation.sets import EvalCase, EvalSet, build_set
from backend.evaluation.store import EvalStore

__all__ = [
    "Comparison",
    "EvalCase",
    "EvalRun",
    "EvalSet",
    "EvalStore",
    "build_set",
    "citation_support",
    "compare_runs",
    "rouge_l",
    "run_set",
    "token_f1",
    "tokens",
]
