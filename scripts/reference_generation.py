"""The plain Hugging Face recipe for a decoder-only LM on translation, run on a homofit translation spec.

The usual causal-LM fine-tuning recipe: each example is the chat-formatted prompt followed by the target and
the end token; labels are -100 on the prompt (loss on the target only); `DataCollatorForSeq2Seq` pads
(labels with -100); `Trainer` + `TrainingArguments` train; `model.generate` on left-padded prompts produces the
translations; sacreBLEU scores them. It takes data files, model, prompt instruction, optimizer, schedule,
batching, batch size, steps, seed, precision and generation settings from the same spec as `homofit train`
through reference_common.py, which refuses the settings no reference reproduces, so the two runs differ only
in the code. It scores the test split before training too (as homofit's test-before report) unless
train.eval_before_training is false.

    python scripts/reference_generation.py configs/multi30k_smollm2.yaml [key=value ...] --out reference.json

Only translation with a causal LM (task.backbone: causal) on line-aligned (plain or gzip) files is mapped.
"""

from __future__ import annotations

import gzip
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.append(str(Path(__file__).resolve().parent))  # reference_common, however this file is loaded
import reference_common as common

TASK_TYPE = "translation"
IGNORE_INDEX = -100
LANGUAGE_NAMES = {"en": "English", "de": "German", "fr": "French", "cs": "Czech"}


@dataclass
class Settings:
    """Everything the recipe takes from the spec, as plain values."""

    train: Path
    test: Path
    source_lang: str
    target_lang: str
    instruction: str
    max_target_length: int
    gguf_file: str | None
    generate: dict[str, Any]  # keyword arguments of model.generate, as homofit sets them
    score_before: bool
    basics: common.Basics


def settings_from_spec(spec_path: Path, overrides: list[str], model_path: str | None = None) -> Settings:
    """Read a homofit spec with homofit's own loader, so defaults and overrides resolve identically."""
    spec = common.load_spec(spec_path, overrides, TASK_TYPE)
    task = spec.task
    common.require(task.backbone == "causal", f"task.backbone={task.backbone}: the translation reference is the "
                                              "causal-LM recipe; set task.backbone: causal.")
    common.require(spec.data.test is not None, "the translation reference needs data.test to score.")
    instruction = task.prefix if task.prefix is not None else (
        f"Translate {LANGUAGE_NAMES.get(task.source_lang, task.source_lang)} to "
        f"{LANGUAGE_NAMES.get(task.target_lang, task.target_lang)}:\n")
    generation = task.generation
    generate: dict[str, Any] = {"max_new_tokens": generation.max_new_tokens, "num_beams": generation.num_beams,
                                "do_sample": generation.do_sample,
                                "no_repeat_ngram_size": generation.no_repeat_ngram_size}
    if generation.do_sample:
        generate.update(temperature=generation.temperature, top_k=generation.top_k, top_p=generation.top_p)
    if generation.num_beams > 1:
        generate["length_penalty"] = generation.length_penalty
    return Settings(
        train=spec.data.train, test=spec.data.test, source_lang=task.source_lang, target_lang=task.target_lang,
        instruction=instruction, max_target_length=task.max_target_length, gguf_file=spec.model.gguf_file,
        generate=generate, score_before=spec.train.eval_before_training, basics=common.basics(spec, model_path),
    )


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
        answer = tokenizer(target, add_special_tokens=False)["input_ids"][: max_target_length - 1]
        answer.append(tokenizer.eos_token_id)
        features.append({"input_ids": prompt + answer, "attention_mask": [1] * (len(prompt) + len(answer)),
                         "labels": [IGNORE_INDEX] * len(prompt) + answer, "prompt": prompt})
    return features


def load_model(settings: Settings) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    extra = {"gguf_file": settings.gguf_file} if settings.gguf_file else {}
    tokenizer = AutoTokenizer.from_pretrained(settings.basics.model_path, **extra)
    if tokenizer.pad_token is None:  # the usual fix for causal LMs without one; padding is always masked
        tokenizer.pad_token = tokenizer.eos_token
    model = common.seeded_model(AutoModelForCausalLM, settings.basics, **extra)
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None:  # transformers 5 marks a GGUF model as quantized even when it dequantized it
        quantizer.remove_quantization_config(model)
    return model, tokenizer


def score(model: Any, tokenizer: Any, features: list[dict], references: list[str],
          settings: Settings) -> dict[str, Any]:
    """Reference perplexity (summed NLL over label tokens), then generation with the spec's settings and sacreBLEU."""
    import torch
    from sacrebleu.metrics import BLEU, CHRF

    model.eval()
    device = next(model.parameters()).device
    padding_side, tokenizer.padding_side = tokenizer.padding_side, "left"  # generation continues each prompt's end
    batch_size = settings.basics.trainer.eval_batch_size
    nll, tokens, hypotheses = 0.0, 0, []
    with torch.inference_mode():
        for start in range(0, len(features), batch_size):
            chunk = features[start : start + batch_size]
            width = max(len(f["input_ids"]) for f in chunk)
            ids = [f["input_ids"] + [tokenizer.pad_token_id] * (width - len(f["input_ids"])) for f in chunk]
            mask = [[1] * len(f["input_ids"]) + [0] * (width - len(f["input_ids"])) for f in chunk]
            labels = torch.tensor([f["labels"] + [IGNORE_INDEX] * (width - len(f["labels"])) for f in chunk],
                                  device=device)
            logits = model(input_ids=torch.tensor(ids, device=device),
                           attention_mask=torch.tensor(mask, device=device)).logits[:, :-1].float()
            nll += float(torch.nn.functional.cross_entropy(logits.transpose(1, 2), labels[:, 1:],
                                                           ignore_index=IGNORE_INDEX, reduction="sum"))
            tokens += int((labels[:, 1:] != IGNORE_INDEX).sum())
            prompts = tokenizer.pad({"input_ids": [f["prompt"] for f in chunk]}, padding=True,
                                    return_tensors="pt").to(device)
            generated = model.generate(**prompts, **settings.generate, pad_token_id=tokenizer.pad_token_id,
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


def run(settings: Settings, output_dir: Path) -> dict[str, Any]:
    from transformers import DataCollatorForSeq2Seq

    languages = settings.source_lang, settings.target_lang
    train_pairs = read_pairs(settings.train, *languages, settings.basics.max_train_samples)
    test_pairs = read_pairs(settings.test, *languages, settings.basics.max_eval_samples)
    model, tokenizer = load_model(settings)
    train_features = encode(train_pairs, tokenizer, settings.instruction, settings.max_target_length)
    test_features = encode(test_pairs, tokenizer, settings.instruction, settings.max_target_length)
    references = [target for _, target in test_pairs]
    trainer = common.build_trainer(  # it moves the model to the device, so the score before runs there too
        settings.basics.trainer, output_dir, model,
        [{key: feature[key] for key in ("input_ids", "attention_mask", "labels")} for feature in train_features],
        DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=IGNORE_INDEX), remove_unused_columns=False)
    result: dict[str, Any] = {}
    if settings.score_before:
        result["test-before"] = score(trainer.model, tokenizer, test_features, references, settings)
    training = common.train(trainer)
    result["test"] = score(trainer.model, tokenizer, test_features, references, settings)
    return {**result, **training, "train_examples": len(train_pairs), "test_examples": len(test_pairs),
            "instruction": settings.instruction}


def summary(result: dict[str, Any]) -> list[str]:
    lines = [f"{name}: BLEU {result[name]['bleu']:.2f}  chrF {result[name]['chrf']:.2f}  "
             f"perplexity {result[name]['perplexity']:.3f}" for name in ("test-before", "test") if name in result]
    return [*lines, f"wall {result['wall_s']} s (training {result['train_runtime_s']} s)"]


RECIPE = common.Recipe(script="reference_generation.py", task_type=TASK_TYPE,
                       spec_example="configs/multi30k_smollm2.yaml", perfect_score=100.0, load=settings_from_spec,
                       run=run, summary=summary)

if __name__ == "__main__":
    common.main(RECIPE, __doc__)
