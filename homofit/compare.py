"""`homofit compare`: is one run really better than another, and do models fine-tuned from the same backbone
fail on the same examples?

Significance: a 95% bootstrap confidence interval for each headline metric of each model (the task's metric
recomputed on every resample of the examples), and for each pair the paired bootstrap test of the difference
(Koehn 2004; Berg-Kirkpatrick et al. 2012) and McNemar's exact test on the examples one gets right and the
other wrong. Homogenization (Bommasani et al. 2022, "Picking on the Same Person"): the rate at which every
model fails an example against the rate expected if their failures were independent."""

from __future__ import annotations

import itertools
import json
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from homofit.errors import HomofitError
from homofit.outcomes import Outcomes

SHOWN_SHARED_ERRORS = 20


@dataclass
class Model:
    """One side of a comparison: a name, the task that scored it and its outcomes on the shared examples."""

    name: str
    task_type: str
    outcomes: Outcomes
    data_hash: str | None
    source: str


# -- where the predictions come from ----------------------------------------------------------------------


def load_models(paths: list[Path], split: str, data: Path | None, before: bool, fail_below: float) -> list[Model]:
    """Models from run directories (their predictions/<split>.jsonl) or checkpoints (predicted here);
    with `before`, each run also as it was before fine-tuning (predictions/<split>-before.jsonl)."""
    models = []
    names = _short_names(paths)
    for path, name in zip(paths, names):
        if (path / "homofit.json").is_file():
            if before:
                raise HomofitError(f"--before {path}: a checkpoint has no scores from before fine-tuning; give its "
                                   "run directory instead.")
            models.append(_from_checkpoint(path, name, split, data, fail_below))
        elif (path / "config.yaml").is_file() and (path / "predictions").is_dir():
            if data is not None:
                raise HomofitError(f"--data {data}: a run directory's predictions are on its own dev and test data; "
                                   f"give {path}/checkpoints/best to predict on another file.")
            if before:
                models.append(_from_run(path, f"{name} (before)", f"{split}-before", fail_below))
            models.append(_from_run(path, name, split, fail_below))
        else:
            raise HomofitError(f"{path}: neither a run directory (with config.yaml and predictions/) nor a homofit "
                               "checkpoint (with homofit.json).")
    if len(models) < 2:
        raise HomofitError("compare needs at least two models: give two runs or checkpoints, or one run with --before.")
    check_same_examples(models)
    return models


def _short_names(paths: list[Path]) -> list[str]:
    """Each path's last part, or enough of its tail to tell it from the others (run/checkpoints/best)."""
    for depth in range(1, 6):
        names = ["/".join(path.absolute().parts[-depth:]) for path in paths]
        if len(set(names)) == len(names):
            return names
    return [str(path) for path in paths]


def _from_run(run: Path, name: str, split: str, fail_below: float) -> Model:
    from homofit.config import load_config
    from homofit.tasks import build_task

    file = run / "predictions" / f"{split}.jsonl"
    if not file.is_file():
        what = ("the run kept no predictions from before fine-tuning (train.eval_before_training, and a "
                "data.test or data.dev)" if split.endswith("-before") else f"the run has no data.{split} predictions")
        raise HomofitError(f"{file}: not found; {what}. Choose --split dev or test.")
    config = load_config(run / "config.yaml")
    state = _checkpoint_state(run)
    task = build_task(config.task, state)
    records = _read_records(file)
    meta = _read_json(run / "meta.json")
    data_hash = (meta.get("data") or {}).get(split.removesuffix("-before"), {}).get("sha256")
    return Model(name, config.task.type, task.outcomes(records, fail_below), data_hash, str(file))


def _checkpoint_state(run: Path) -> dict[str, Any]:
    """The task state (labels, ...) a run's checkpoint kept, so the task scores as it did."""
    for name in ("best", "last"):
        state_file = run / "checkpoints" / name / "homofit.json"
        if state_file.is_file():
            return _read_json(state_file).get("task_state", {})
    return {}


def _from_checkpoint(path: Path, name: str, split: str, data: Path | None, fail_below: float) -> Model:
    from homofit.inference import load_checkpoint, score_examples, spec_split
    from homofit.rundir import file_sha256

    loaded = load_checkpoint(path)
    examples = None
    if data is None:
        data, examples = spec_split(loaded, split, path)
    examples, predictions, _ = score_examples(loaded, data, split, examples=examples)
    records = loaded.task.prediction_records(examples, predictions)
    return Model(name, loaded.config.task.type, loaded.task.outcomes(records, fail_below), file_sha256(Path(data)),
                 str(data))


def _read_records(file: Path) -> list[dict[str, Any]]:
    from homofit.data.readers import read_jsonl

    records = [record for _, record in read_jsonl(file)]
    if not records:
        raise HomofitError(f"{file}: no predictions in it.")
    return records


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise HomofitError(f"{path}: not valid JSON ({error.msg}); the run directory is damaged.") from None


def check_same_examples(models: list[Model]) -> None:
    """Every model was scored on the same examples, in the same order: same task, data hash and ids."""
    first = models[0]
    for model in models[1:]:
        if model.task_type != first.task_type:
            raise HomofitError(f"{model.name} is a {model.task_type} model and {first.name} a {first.task_type} one; "
                               "compare models of one task.")
        if model.data_hash and first.data_hash and model.data_hash != first.data_hash:
            raise HomofitError(f"{model.name} and {first.name} were scored on different data (the files' hashes "
                               "differ); compare runs on the same dev or test file, or give checkpoints and --data.")
        if model.outcomes.ids != first.outcomes.ids:
            count, other = len(first.outcomes.ids), len(model.outcomes.ids)
            where = next((index for index, (a, b) in enumerate(zip(first.outcomes.ids, model.outcomes.ids)) if a != b),
                         min(count, other))
            raise HomofitError(f"{model.name} and {first.name} were scored on different examples ({other} vs {count}; "
                               f"they differ from example {where + 1}); compare runs on the same data "
                               "(and the same data.max_eval_samples).")


# -- significance -----------------------------------------------------------------------------------------


def resample_counts(examples: int, resamples: int, seed: int, progress: Any = None) -> np.ndarray:
    """(resamples, examples): how often each example is drawn in each bootstrap resample (with replacement)."""
    rng = np.random.default_rng(seed)
    counts = np.empty((resamples, examples), dtype=np.float32)
    chunk = 100
    for start in range(0, resamples, chunk):
        stop = min(start + chunk, resamples)
        counts[start:stop] = rng.multinomial(examples, np.full(examples, 1.0 / examples), size=stop - start)
        if progress is not None:
            progress(stop - start)
    return counts


def bootstrap_values(outcomes: Outcomes, metric: str, counts: np.ndarray) -> np.ndarray:
    """The metric on every resample: the task's metric of the resample's pooled counts."""
    return np.asarray(outcomes.metrics[metric](counts @ outcomes.stats), dtype=float)


def confidence_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """The percentile interval of bootstrap values."""
    tail = (1 - level) / 2
    return float(np.quantile(values, tail)), float(np.quantile(values, 1 - tail))


def paired_bootstrap_p(observed: float, deltas: np.ndarray) -> float:
    """Two-sided p-value of a difference `observed` between two models from the resampled differences
    `deltas` (same resamples for both): how often a resample's difference, centred on zero (the null), is at
    least as large as the observed one (Berg-Kirkpatrick et al. 2012's shift of Koehn 2004's test)."""
    exceed = np.abs(deltas - deltas.mean()) >= abs(observed) - 1e-12
    return float((1 + exceed.sum()) / (len(deltas) + 1))


def mcnemar_exact(first_correct: np.ndarray, second_correct: np.ndarray) -> dict[str, Any]:
    """McNemar's exact test: b examples only the first gets right, c only the second; two-sided binomial
    p-value of min(b, c) in b + c trials at 1/2 (scipy.stats.binomtest)."""
    from scipy.stats import binomtest

    only_first = int(np.sum(first_correct & ~second_correct))
    only_second = int(np.sum(~first_correct & second_correct))
    discordant = only_first + only_second
    p_value = 1.0 if discordant == 0 else float(binomtest(min(only_first, only_second), discordant, 0.5).pvalue)
    return {"only_first_right": only_first, "only_second_right": only_second, "p_value": p_value}


# -- homogenization ---------------------------------------------------------------------------------------


def homogenization(failures: np.ndarray) -> dict[str, Any]:
    """`failures` (models, examples), True where a model fails. The systemic failure rate (every model fails),
    the rate expected if the models failed independently (the product of their failure rates), and their
    ratio, the homogenization score: 1 for independent failures, above 1 when failures are shared."""
    rates = failures.mean(axis=1)
    systemic = float(np.all(failures, axis=0).mean())
    expected = float(np.prod(rates))
    return {"failure_rates": [float(rate) for rate in rates], "systemic_failure_rate": systemic,
            "expected_if_independent": expected,
            "homogenization": systemic / expected if expected > 0 else None}


def cohen_kappa(first: list[str], second: list[str]) -> float | None:
    """Agreement of two label sequences beyond chance; None when chance agreement is total."""
    count = len(first)
    observed = sum(a == b for a, b in zip(first, second)) / count
    first_counts, second_counts = Counter(first), Counter(second)
    chance = sum(first_counts[label] * second_counts[label] for label in first_counts) / count**2
    return None if chance >= 1 else (observed - chance) / (1 - chance)


def pairwise_overlap(first: Model, second: Model, labelled: bool) -> dict[str, Any]:
    errors_first, errors_second = ~first.outcomes.correct, ~second.outcomes.correct
    union = int(np.sum(errors_first | errors_second))
    result: dict[str, Any] = {
        "outcome_agreement": float(np.mean(errors_first == errors_second)),
        "error_jaccard": float(np.sum(errors_first & errors_second) / union) if union else None,
        "both_wrong": int(np.sum(errors_first & errors_second)),
    }
    if labelled:
        result["prediction_agreement"] = float(np.mean([a == b for a, b in zip(first.outcomes.predicted,
                                                                                 second.outcomes.predicted)]))
        result["cohen_kappa"] = cohen_kappa(first.outcomes.predicted, second.outcomes.predicted)
    return result


def error_sets(failures: np.ndarray) -> dict[str, int]:
    """Examples by which models fail them (an UpSet plot's bars): '110' = the first two fail, the third not."""
    patterns = Counter("".join("1" if failed else "0" for failed in column) for column in failures.T)
    return dict(sorted(patterns.items(), key=lambda item: (-item[0].count("1"), item[0])))


# -- the whole comparison ---------------------------------------------------------------------------------


LABELLED_TASKS = {"classification", "relation"}


def compare(models: list[Model], resamples: int = 1000, seed: int = 0, progress: Any = None) -> dict[str, Any]:
    """Everything `homofit compare` reports, as JSON-able data."""
    first = models[0].outcomes
    examples = len(first.ids)
    counts = resample_counts(examples, resamples, seed, progress)
    metrics = list(first.metrics)
    values = {model.name: {metric: bootstrap_values(model.outcomes, metric, counts) for metric in metrics}
              for model in models}
    per_model = []
    for model in models:
        scores = {}
        for metric in metrics:
            low, high = confidence_interval(values[model.name][metric])
            scores[metric] = {"value": model.outcomes.value(metric), "ci95": [low, high]}
        per_model.append({"name": model.name, "source": model.source, "scores": scores,
                          "right": int(model.outcomes.correct.sum()), "examples": examples})
    pairs = []
    for a, b in itertools.combinations(models, 2):
        differences = {}
        for metric in metrics:
            observed = a.outcomes.value(metric) - b.outcomes.value(metric)
            deltas = values[a.name][metric] - values[b.name][metric]
            low, high = confidence_interval(deltas)
            differences[metric] = {"difference": observed, "ci95": [low, high],
                                   "p_value": paired_bootstrap_p(observed, deltas)}
        pairs.append({"first": a.name, "second": b.name, "differences": differences,
                      "mcnemar": mcnemar_exact(a.outcomes.correct, b.outcomes.correct),
                      **pairwise_overlap(a, b, models[0].task_type in LABELLED_TASKS)})
    failures = np.stack([~model.outcomes.correct for model in models])
    shared = np.flatnonzero(np.all(failures, axis=0))
    corpus = corpus_significance(models, resamples) if models[0].task_type == "translation" else None
    return {
        **({"corpus_bleu_chrf": corpus} if corpus else {}),
        "task": models[0].task_type, "examples": examples, "resamples": resamples, "seed": seed,
        "metrics": metrics, "models": per_model, "pairs": pairs,
        "right_means": _right_means(models[0]),
        "homogenization": homogenization(failures),
        "error_sets": error_sets(failures),
        "shared_errors_by_label": _shared_by_label(models, failures),
        "shared_errors": [{"id": first.ids[index], "input": first.inputs[index], "gold": first.gold[index],
                           "predicted": {model.name: model.outcomes.predicted[index] for model in models}}
                          for index in shared],
    }


def corpus_significance(models: list[Model], resamples: int) -> dict[str, Any] | None:
    """Translation: corpus BLEU and chrF of each model, and each model against the first by sacrebleu's own
    paired bootstrap (its PairedTest, the test of Koehn 2004), with sacrebleu's signatures."""
    from sacrebleu.metrics import BLEU, CHRF
    from sacrebleu.significance import PairedTest

    references = models[0].outcomes.notes.get("references")
    if not references or len({len(refs) for refs in references}) != 1:
        return None  # sacrebleu's test needs the same number of references for every sentence
    streams = [[refs[index] for refs in references] for index in range(len(references[0]))]
    systems = [(model.name, model.outcomes.predicted) for model in models]
    signatures, results = PairedTest(systems, {"bleu": BLEU(), "chrf": CHRF()}, streams, test_type="bs",
                                     n_samples=resamples)()
    short = {key: "bleu" if key.lower().startswith("bleu") else "chrf" for key in results if key != "System"}
    table: dict[str, Any] = {"baseline": models[0].name,
                             "signatures": {short.get(k, k): str(v) for k, v in signatures.items()}, "models": {}}
    for position, model in enumerate(models):
        table["models"][model.name] = {
            short[key]: {"score": float(values[position].score), "mean": float(values[position].mean),
                         "ci95_half_width": float(values[position].ci),
                         "p_value_against_baseline": None if position == 0 else float(values[position].p_value)}
            for key, values in results.items() if key != "System"}
    return table


def _right_means(model: Model) -> str:
    fail_below = model.outcomes.notes.get("fail_below")
    if fail_below is not None:
        metric = next(iter(model.outcomes.metrics)).removeprefix("sentence_")
        return f"its output's sentence-level {metric} is at least {fail_below:g}"
    return {"ner": "every entity of the sentence found exactly, and nothing else",
            "qa": "an exact match with a gold answer"}.get(model.task_type, "the predicted label is the gold one")


def _shared_by_label(models: list[Model], failures: np.ndarray) -> dict[str, dict[str, int]]:
    """Per gold label: examples, examples some model fails, and examples every model fails."""
    labels = models[0].outcomes.labels
    some, every = failures.any(axis=0), failures.all(axis=0)
    table: dict[str, dict[str, int]] = {}
    for index, example_labels in enumerate(labels):
        for label in example_labels:
            row = table.setdefault(label, {"examples": 0, "some_model_fails": 0, "every_model_fails": 0})
            row["examples"] += 1
            row["some_model_fails"] += int(some[index])
            row["every_model_fails"] += int(every[index])
    return dict(sorted(table.items(), key=lambda item: (-item[1]["every_model_fails"], item[0])))


# -- reports ----------------------------------------------------------------------------------------------


def format_text(result: dict[str, Any]) -> str:
    """compare.txt: every table of the comparison."""
    metrics = result["metrics"]
    title = (f"{result['task']}: {len(result['models'])} models on the same {result['examples']} examples; "
             f"95% intervals from {result['resamples']} bootstrap resamples (seed {result['seed']}).")
    lines = [title, ""]
    header = f"{'model':<40}" + "".join(f"{metric:>28}" for metric in metrics)
    lines += [header, "-" * len(header)]
    for model in result["models"]:
        cells = [f"{_number(score['value'])} [{_number(score['ci95'][0])}, {_number(score['ci95'][1])}]"
                 for score in model["scores"].values()]
        lines.append(f"{model['name'][:40]:<40}" + "".join(f"{cell:>28}" for cell in cells))
    lines += ["", ("Pairs: difference (first - second) with its 95% interval and paired-bootstrap p-value; "
                   "McNemar's exact test on the examples only one of them gets right")]
    for pair in result["pairs"]:
        lines.append(f"  {pair['first']}  vs  {pair['second']}")
        for metric, difference in pair["differences"].items():
            verdict = "significant at 0.05" if difference["p_value"] < 0.05 else "not significant"
            lines.append(f"    {metric:<20} {_signed(difference['difference'])} "
                         f"[{_signed(difference['ci95'][0])}, {_signed(difference['ci95'][1])}]  "
                         f"p {_p_value(difference['p_value'], result['resamples'])}  ({verdict})")
        mcnemar = pair["mcnemar"]
        lines.append(f"    McNemar: {mcnemar['only_first_right']} right only by the first, "
                     f"{mcnemar['only_second_right']} only by the second, p = {mcnemar['p_value']:.3g}")
        overlap = [f"outcome agreement {pair['outcome_agreement']:.3f}",
                   f"error Jaccard {_maybe(pair['error_jaccard'])}", f"both wrong {pair['both_wrong']}"]
        if "cohen_kappa" in pair:
            overlap.insert(0, (f"prediction agreement {pair['prediction_agreement']:.3f}, "
                               f"Cohen's kappa {_maybe(pair['cohen_kappa'])}"))
        lines.append("    " + "; ".join(overlap))
    corpus = result.get("corpus_bleu_chrf")
    if corpus:
        lines += ["", (f"Corpus scores with sacrebleu's paired bootstrap against {corpus['baseline']} "
                       "(mean +- 95% half-width, p-value)")]
        for name, scores in corpus["models"].items():
            cells = [f"{metric} {score['score']:.2f} ({score['mean']:.2f} +- {score['ci95_half_width']:.2f}"
                     + (f", p {score['p_value_against_baseline']:.4f})" if score["p_value_against_baseline"] is not None
                        else ")") for metric, score in scores.items()]
            lines.append(f"  {name}: " + "; ".join(cells))
    homogenized = result["homogenization"]
    lines += ["", f"Homogenization (an example is right when {result['right_means']})",
              "  failure rates: " + ", ".join(f"{model['name']} {rate:.4f}" for model, rate in
                                              zip(result["models"], homogenized["failure_rates"])),
              f"  systemic failure rate (every model fails): {homogenized['systemic_failure_rate']:.4f}",
              f"  expected if failures were independent:     {homogenized['expected_if_independent']:.4f}",
              f"  homogenization score (their ratio):        {_maybe(homogenized['homogenization'])}",
              "", "Examples by which models fail them (1 = fails, in the order above)"]
    lines += [f"  {pattern}  {count}" for pattern, count in result["error_sets"].items()]
    lines += ["", f"{'gold label':<30}{'examples':>10}{'some fail':>12}{'all fail':>10}"]
    for label, row in list(result["shared_errors_by_label"].items())[:30]:
        lines.append(f"{label[:30]:<30}{row['examples']:>10}{row['some_model_fails']:>12}{row['every_model_fails']:>10}")
    shared = result["shared_errors"]
    lines += ["", f"Every model fails {len(shared)} examples" + (f"; the first {SHOWN_SHARED_ERRORS}:" if
                                                                  len(shared) > SHOWN_SHARED_ERRORS else ":")]
    for error in shared[:SHOWN_SHARED_ERRORS]:
        lines.append(f"  [{error['id']}] {error['input'][:200]}")
        lines.append(f"      gold: {error['gold'][:200]}")
        for name, predicted in error["predicted"].items():
            lines.append(f"      {name}: {predicted[:200]}")
    return "\n".join(lines) + "\n"


def _p_value(p_value: float, resamples: int) -> str:
    """A bootstrap p-value; at its floor, 1 / (resamples + 1), it is only known to be at most that."""
    floor = 1 / (resamples + 1)
    return f"<= {floor:.4f}" if p_value <= floor + 1e-12 else f"= {p_value:.4f}"


def _number(value: float) -> str:
    return f"{value:.4f}" if abs(value) <= 1.0 else f"{value:.2f}"


def _signed(value: float) -> str:
    return f"{value:+.4f}" if abs(value) <= 1.0 else f"{value:+.2f}"


def _maybe(value: float | None) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"


def write_outputs(result: dict[str, Any], out: Path) -> list[Path]:
    """compare.json, compare.txt and, with matplotlib, compare.forest.png and compare.errors.png."""
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "compare.json", out / "compare.txt"]
    written[0].write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    written[1].write_text(format_text(result), encoding="utf-8")
    try:
        import matplotlib
    except ImportError:
        return written
    matplotlib.use("Agg")
    written += [_forest_plot(result, out / "compare.forest.png"), _error_sets_plot(result, out / "compare.errors.png")]
    return written


def _forest_plot(result: dict[str, Any], path: Path) -> Path:
    import matplotlib.pyplot as plt

    metrics, models = result["metrics"], result["models"]
    figure, axes = plt.subplots(1, len(metrics), figsize=(4 * len(metrics), 0.5 * len(models) + 1.5), squeeze=False)
    for axis, metric in zip(axes[0], metrics):
        for row, model in enumerate(models):
            score = model["scores"][metric]
            low, high = score["ci95"]
            axis.errorbar(score["value"], row, xerr=[[score["value"] - low], [high - score["value"]]], fmt="o",
                          capsize=4, color="C0")
        axis.set_yticks(range(len(models)), [model["name"] for model in models] if axis is axes[0][0] else [])
        axis.invert_yaxis()
        axis.set_title(f"{metric} (95% CI)")
        axis.grid(axis="x", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def _error_sets_plot(result: dict[str, Any], path: Path) -> Path:
    """An UpSet-style picture: one bar per combination of failing models, the combination marked below it."""
    import matplotlib.pyplot as plt

    sets = {pattern: count for pattern, count in result["error_sets"].items() if "1" in pattern}
    names = [model["name"] for model in result["models"]]
    figure, (bars, matrix) = plt.subplots(2, 1, figsize=(max(4, 0.6 * len(sets) + 2), 2 + 0.4 * len(names)),
                                          sharex=True, gridspec_kw={"height_ratios": [3, 1 + 0.3 * len(names)]})
    positions = range(len(sets))
    bars.bar(positions, list(sets.values()), color="C3")
    bars.set_ylabel("examples failed")
    bars.set_title("Which models fail which examples")
    for position, pattern in zip(positions, sets):
        for row, flag in enumerate(pattern):
            matrix.scatter(position, row, color="black" if flag == "1" else "lightgray", s=40)
    matrix.set_yticks(range(len(names)), names)
    matrix.invert_yaxis()
    matrix.set_xticks([])
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def print_summary(console: Any, result: dict[str, Any]) -> None:
    """The console table: each model's metrics with intervals, each pair's verdict, the homogenization."""
    from rich.table import Table

    table = Table(title=f"{result['task']}: {result['examples']} examples, 95% bootstrap intervals")
    table.add_column("model")
    for metric in result["metrics"]:
        table.add_column(metric, justify="right")
    for model in result["models"]:
        table.add_row(model["name"], *[f"{_number(score['value'])} [{_number(score['ci95'][0])}, "
                                       f"{_number(score['ci95'][1])}]" for score in model["scores"].values()])
    console.print(table)
    pairs = Table(title="pairs: difference (first - second), paired bootstrap p, McNemar p")
    for column in ("first", "second", *result["metrics"], "McNemar p", "error Jaccard"):
        pairs.add_column(column, justify="right" if column not in ("first", "second") else "left")
    for pair in result["pairs"]:
        cells = [f"{_signed(difference['difference'])} (p {_p_value(difference['p_value'], result['resamples'])})"
                 for difference in pair["differences"].values()]
        pairs.add_row(pair["first"], pair["second"], *cells, f"{pair['mcnemar']['p_value']:.3g}",
                      _maybe(pair["error_jaccard"]))
    console.print(pairs)
    homogenized = result["homogenization"]
    console.print(f"homogenization {_maybe(homogenized['homogenization'])}: every model fails "
                  f"{homogenized['systemic_failure_rate']:.4f} of the examples, "
                  f"{homogenized['expected_if_independent']:.4f} if their failures were independent; "
                  f"{len(result['shared_errors'])} examples fail everywhere.", highlight=False)
