"""The plain Hugging Face recipe for a decoder-only LM on translation, run on a homofit translation spec.

The usual causal-LM fine-tuning recipe: each example is the chat-formatted prompt followed by the target and
the end token; labels are -100 on the prompt (loss on the target only); `DataCollatorForSeq2Seq` pads
(labels with -100); `Trainer` + `TrainingArguments` train; `model.generate` on left-padded prompts produces the
translations; sacreBLEU scores them. It takes data files, model, prompt instruction, optimizer, schedule,
batch size, steps, seed and generation settings from the same spec as `homofit train`, so the two runs differ
only in the code. It scores the test split before and after training, as homofit's test-before/test reports.

    python scripts/reference_generation.py configs/multi30k_smollm2.yaml [key=value ...] --out reference.json

Only what that spec uses is mapped: task.type translation, backbone causal with the chat template,
line-aligned (plain or gzip) files, AdamW, no dev split.
"""

from __future__ import annotations

import argparse
import gzip
import inspect
import json
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

IGNORE_INDEX = -100
LANGUAGE_NAMES = {"en": "English", "de": "German", "fr": "French", "cs": "Czech"}


def read_pairs(source_path: Path, source_lang: str, target_lang: str, limit: int | None) -> list[tuple[str, str]]:
    """Line-aligned files NAME.src[.gz] and NAME.tgt[.gz]."""
    target_path = Path(str(source_path).replace(f".{source_lang}", f".{target_lang}", 1))

    def lines(path: Path) -> list[str]:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8") as handle:
            return [line.rstrip("\r\n").strip() for line in handle]

    pairs = [(source, target) for source, target in zip(lines(source_path), lines(target_path)) if source or target]
    return pairs[:limit] if limit else pairs


def encode(pairs: list[tuple[str, str]], tokenizer: Any, instruction: str, max_target_length: int) -> list[dict]:
    """Prompt (chat template, generation prompt added) + target + end token; labels only on target and end."""
    features = []
    for source, target in pairs:
        messages = [{"role": "user", "content": instruction + source}]
        prompt_text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        prompt = tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
        answer = tokenizer(target, add_special_tokens=False)["input_ids"][: max_target_length - 1] + [tokenizer.eos_token_id]
        features.append({"input_ids": prompt + answer, "attention_mask": [1] * (len(prompt) + len(answer)),
                         "labels": [IGNORE_INDEX] * len(prompt) + answer, "prompt": prompt})
    return features


def load_model(spec: Any) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from homofit.model import resolve_model_path

    path = resolve_model_path(spec.model.name_or_path)
    extra = {"gguf_file": spec.model.gguf_file} if spec.model.gguf_file else {}
    tokenizer = AutoTokenizer.from_pretrained(path, **extra)
    if tokenizer.pad_token is None:  # the usual fix for causal LMs without one; padding is always masked
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(path, **extra)
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None:  # transformers 5 marks a GGUF model as quantized even when it dequantized it
        quantizer.remove_quantization_config(model)
    return model, tokenizer


def score(model: Any, tokenizer: Any, features: list[dict], references: list[str], spec: Any) -> dict[str, Any]:
    """Reference perplexity (summed NLL over label tokens), then greedy generation and sacreBLEU."""
    import torch
    from sacrebleu.metrics import BLEU, CHRF

    model.eval()
    padding_side, tokenizer.padding_side = tokenizer.padding_side, "left"  # generation continues each prompt's end
    batch_size = spec.train.eval_batch_size or spec.train.batch_size
    nll, tokens, hypotheses = 0.0, 0, []
    settings = spec.task.generation
    with torch.inference_mode():
        for start in range(0, len(features), batch_size):
            chunk = features[start : start + batch_size]
            width = max(len(f["input_ids"]) for f in chunk)
            ids = torch.tensor([f["input_ids"] + [tokenizer.pad_token_id] * (width - len(f["input_ids"])) for f in chunk])
            mask = torch.tensor([[1] * len(f["input_ids"]) + [0] * (width - len(f["input_ids"])) for f in chunk])
            labels = torch.tensor([f["labels"] + [IGNORE_INDEX] * (width - len(f["labels"])) for f in chunk])
            logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
            losses = torch.nn.functional.cross_entropy(logits.transpose(1, 2), labels[:, 1:], ignore_index=IGNORE_INDEX,
                                                       reduction="sum")
            nll += float(losses)
            tokens += int((labels[:, 1:] != IGNORE_INDEX).sum())
            prompts = tokenizer.pad({"input_ids": [f["prompt"] for f in chunk]}, padding=True, return_tensors="pt")
            generated = model.generate(**prompts, max_new_tokens=settings.max_new_tokens, do_sample=settings.do_sample,
                                       num_beams=settings.num_beams, pad_token_id=tokenizer.pad_token_id,
                                       eos_token_id=tokenizer.eos_token_id)
            new = generated[:, prompts["input_ids"].shape[1]:]
            hypotheses += [text.strip() for text in tokenizer.batch_decode(new, skip_special_tokens=True)]
    tokenizer.padding_side = padding_side
    bleu, chrf = BLEU(), CHRF()
    return {
        "bleu": bleu.corpus_score(hypotheses, [references]).score,
        "chrf": chrf.corpus_score(hypotheses, [references]).score,
        "perplexity": math.exp(nll / tokens),
        "bleu_signature": str(bleu.get_signature()),
        "hypotheses": hypotheses[:5],
    }


def training_arguments(spec: Any, output_dir: Path) -> Any:
    from transformers import TrainingArguments

    accepted = inspect.signature(TrainingArguments.__init__).parameters
    warmup = spec.optim.warmup_steps or math.ceil(spec.optim.warmup_ratio * spec.train.max_steps)
    arguments: dict[str, Any] = {
        "output_dir": str(output_dir), "learning_rate": spec.optim.lr, "weight_decay": spec.optim.weight_decay,
        "adam_beta1": spec.optim.betas[0], "adam_beta2": spec.optim.betas[1], "adam_epsilon": spec.optim.eps,
        "lr_scheduler_type": spec.optim.schedule, "warmup_steps": warmup, "max_steps": spec.train.max_steps,
        "per_device_train_batch_size": spec.train.batch_size, "gradient_accumulation_steps": spec.train.grad_accum,
        "max_grad_norm": spec.train.max_grad_norm or 0.0, "seed": spec.train.seed,
        "logging_steps": spec.train.log_every, "save_strategy": "no", "report_to": [], "disable_tqdm": True,
        "remove_unused_columns": False,
    }
    arguments["use_cpu" if "use_cpu" in accepted else "no_cuda"] = spec.train.device == "cpu"
    return TrainingArguments(**arguments)


def run(spec: Any, output_dir: Path, score_before: bool) -> dict[str, Any]:
    from transformers import DataCollatorForSeq2Seq, Trainer, set_seed

    started = time.perf_counter()
    task = spec.task
    instruction = task.prefix if task.prefix is not None else (
        f"Translate {LANGUAGE_NAMES.get(task.source_lang, task.source_lang)} to "
        f"{LANGUAGE_NAMES.get(task.target_lang, task.target_lang)}:\n")
    train_pairs = read_pairs(spec.data.train, task.source_lang, task.target_lang, spec.data.max_train_samples)
    test_pairs = read_pairs(spec.data.test, task.source_lang, task.target_lang, spec.data.max_eval_samples)
    set_seed(spec.train.seed)
    model, tokenizer = load_model(spec)
    train_features = encode(train_pairs, tokenizer, instruction, task.max_target_length)
    test_features = encode(test_pairs, tokenizer, instruction, task.max_target_length)
    references = [target for _, target in test_pairs]
    result: dict[str, Any] = {}
    if score_before:
        result["test_before"] = score(model, tokenizer, test_features, references, spec)
    model.train()
    trainer = Trainer(model=model, args=training_arguments(spec, output_dir),
                      train_dataset=[{k: f[k] for k in ("input_ids", "attention_mask", "labels")} for f in train_features],
                      data_collator=DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=IGNORE_INDEX))
    train_started = time.perf_counter()
    trainer.train()
    train_seconds = time.perf_counter() - train_started
    result["test"] = score(model, tokenizer, test_features, references, spec)
    result.update({
        "train_log": [{"step": e["step"], "loss": e["loss"]} for e in trainer.state.log_history if "loss" in e],
        "optimizer_steps": trainer.state.global_step,
        "train_runtime_s": round(train_seconds, 1),
        "wall_s": round(time.perf_counter() - started, 1),
        "train_examples": len(train_pairs), "test_examples": len(test_pairs), "instruction": instruction,
    })
    return result


def main() -> None:
    from homofit.config import load_config

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("spec", type=Path, help="A homofit translation spec, e.g. configs/multi30k_smollm2.yaml.")
    parser.add_argument("overrides", nargs="*", help="Dotted overrides as for homofit train.")
    parser.add_argument("--out", type=Path, required=True, help="Write the scores here (JSON).")
    parser.add_argument("--no-before", action="store_true", help="Skip scoring the model before training.")
    args = parser.parse_args()
    spec = load_config(args.spec, args.overrides)
    mapped = {"task.type": (spec.task.type, "translation"), "task.backbone": (spec.task.backbone, "causal"),
              "task.prompt_style": (spec.task.prompt_style, "auto"), "optim.name": (spec.optim.name, "adamw"),
              "data.dev": (spec.data.dev, None), "train.max_steps is set": (spec.train.max_steps is not None, True)}
    for key, (value, expected) in mapped.items():
        if value != expected:
            raise SystemExit(f"reference_generation.py: {key}={value!r} is not mapped to this recipe (only {expected!r}).")
    with tempfile.TemporaryDirectory(prefix="reference-generation-") as scratch:
        result = run(spec, Path(scratch), score_before=not args.no_before)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    for name in ("test_before", "test"):
        if name in result:
            scores = result[name]
            print(f"{name}: BLEU {scores['bleu']:.2f}  chrF {scores['chrf']:.2f}  perplexity {scores['perplexity']:.3f}")
    print(f"wall {result['wall_s']} s (training {result['train_runtime_s']} s)")


if __name__ == "__main__":
    main()
