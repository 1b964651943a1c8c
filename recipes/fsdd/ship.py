"""Make a trained FSDD model the package's built-in one: copy EXP/model.onnx and EXP/stream.onnx
into asr/assets/digits/, with digits.json (what stage 6 measured on exactly these files, and
their sha256) and MODEL_CARD.md (what the model recognizes, how it was made, its figures, the
data's licences). tests/runtime/test_builtin.py holds the shipped files to the card.

    python recipes/fsdd/ship.py --exp exp/fsdd      (recipes/fsdd/run.sh --stage 7)
"""

import argparse
import hashlib
import json
import os
import shutil
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEST = os.path.join(ROOT, "asr", "assets", "digits")

CARD = """# Built-in model: English digits

What `asr transcribe a.wav`, `asr stream`, `asr serve`, `asr mic` and `asr.load_model()` use
when no model is given. Trained by `make demo` (recipes/fsdd/run.sh, config
recipes/fsdd/conf.yaml); shipped with `recipes/fsdd/run.sh --stage 7 --stop-stage 7`.

**It recognizes** the ten English digits "zero" to "nine", one at a time or in strings with any
pause between them (none to seconds), from a file or a live stream. **It does not** recognize
any other word: other speech is heard as unknown words, which it leaves out of the text (a
sentence gives an empty transcript), and "oh" for zero, "double five", numbers such as
"twenty" or "hundred" are not digits to it. Its training voices are FSDD's six adult speakers and about 90 non-native
speakers of speechocean762, children and adults; on voices and microphones far from these it
errs much more (figures below): it is a digits model for voices like FSDD's, not yet a
speaker-independent one. It minds the recording level: the test string in tests/data reads
right from 10 dB quieter to 6 dB louder than recorded, but 20 dB quieter it loses a word.

## Model
A BiGRU + CTC acoustic model over whole-word units (the ten digits and an unknown-word unit
`<unk>`): 8 kHz log-mel features (80 bins, 10 ms hop), a convolutional front end subsampling
by 2, three bidirectional GRU layers of 160 units, {params} parameters. Latency-controlled:
the streaming graph (`stream.onnx`) reads chunks of 16 model frames (320 ms) with 80 ms of
right context and carries the forward state across chunks; the offline graph (`model.onnx`)
reads whole files. Both are ONNX (onnxruntime, no PyTorch), each with its front end,
vocabulary, word-confidence calibration and a short card (name, language, what it recognizes:
recipes/fsdd/card.json, which `asr serve` shows) in its metadata.

## Training data
- Free Spoken Digit Dataset (FSDD): 2,400 recordings (index 10-49 of each digit and speaker),
  joined on the fly into strings of 2-8 with pauses of up to 1 s, each piece at its own level
  (`train.concat`). Zohar Jackson, César Souza, Jason Flaks, Yuxin Pan, Hereman Nicolas and
  Adhish Thite, https://github.com/Jakobovski/free-spoken-digit-dataset, CC BY-SA 4.0.
- speechocean762 (train speakers less 13 dev speakers and every second speaker who reads digit
  strings, held out to measure other voices): every utterance with a digit word and 300
  others; words other than digits are the unknown-word unit. Junbo Zhang et al.,
  https://www.openslr.org/101/, CC BY 4.0.
- Generated non-speech (silence, noise, tones, hum, clicks) with empty transcripts.
- Perturbations in training: {perturbations}.

The weights are derived from these data; they are distributed under CC BY-SA 4.0, with the
attributions above.

## Figures
Measured on these very files (sha256 in digits.json) by `python tools/measure_digits.py`
(recipes/fsdd/run.sh stage 6): WER %, offline = the offline graph on whole files, streamed =
the streaming graph in 100 ms pieces with the default endpointing (the continuous recording
through `asr-stream`). "No digit said": the share of utterances without a digit word that came
out with any digit (lower is better).

| set | items | offline | streamed |
| --- | ---: | ---: | ---: |
{rows}

None of these recordings was used in training: FSDD's test split (index 0-4) and dev split
(5-9) are held out, and "other voices" are speechocean762 speakers held out of training.
"""


def perturbations(checkpoint: str) -> str:
    """The card's line on training perturbations, read from the checkpoint's own config (the
    card once claimed level, noise and VTLP perturbations that the recipe did not use)."""
    import torch  # the training install's

    t = torch.load(checkpoint, map_location="cpu", weights_only=True)["config"]["train"]
    out = []
    if t.get("concat"):
        low, high = t["concat"]["gain_db"]
        out.append(f"each piece of a connected string at its own level ({low:g} to {high:+g} dB)")
    if t.get("gain_db"):
        out.append(f"recording level ({t['gain_db'][0]:g} to {t['gain_db'][1]:+g} dB)")
    if t.get("noise_snr"):
        out.append(f"noise ({t['noise_snr'][0]:g}-{t['noise_snr'][1]:g} dB SNR)")
    if t.get("vtlp"):
        out.append(f"vocal tract length ({t['vtlp'][0]:g}-{t['vtlp'][1]:g})")
    if t.get("eq_db"):
        out.append(f"a random channel equalizer (up to {t['eq_db']:g} dB)")
    speeds = [s for s in t.get("speed_perturb") or [] if s != 1.0]
    if speeds:
        out.append("speed (" + ", ".join(f"{s:g}" for s in speeds) + ")")
    spec = t.get("specaugment") or {}
    if spec.get("freq_masks") or spec.get("time_masks"):
        out.append(f"SpecAugment ({spec.get('freq_masks', 0)} frequency and {spec.get('time_masks', 0)} time masks)")
    return "; ".join(out) if out else "none"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--exp", required=True, help="the recipe's experiment folder (model.onnx, stream.onnx, digits.json)")
    args = p.parse_args(argv)
    with open(os.path.join(args.exp, "digits.json")) as f:
        rows = json.load(f)
    import onnx  # the training install's: reads the cards, counts the parameters of the offline graph

    for name in ("model.onnx", "stream.onnx"):
        props = {p.key for p in onnx.load(os.path.join(args.exp, name), load_external_data=False).metadata_props}
        if "asr.card" not in props:
            sys.exit(f"{args.exp}/{name} has no model card (asr.card): run stage 4 again (it sets recipes/fsdd/card.json)")
    os.makedirs(DEST, exist_ok=True)
    sha = {}
    for name in ("model.onnx", "stream.onnx"):
        shutil.copyfile(os.path.join(args.exp, name), os.path.join(DEST, name))
        with open(os.path.join(DEST, name), "rb") as f:
            sha[name] = hashlib.sha256(f.read()).hexdigest()
    g = onnx.load(os.path.join(DEST, "model.onnx")).graph
    params = sum(int(np.prod(t.dims)) for t in g.initializer)
    nan = float("nan")
    lines = []
    for r in rows:
        if "with_digits_offline" in r or "with_digits_streamed" in r:  # a share of clips, not a WER
            lines.append(f"| {r['set']} (% of clips with a digit) | {r['items']} | "
                         f"{r.get('with_digits_offline', nan):.2f} | {r.get('with_digits_streamed', nan):.2f} |")
        else:
            lines.append(f"| {r['set']} | {r['items']} | {r.get('wer_offline', nan):.2f} | {r.get('wer_streamed', nan):.2f} |")
    with open(os.path.join(DEST, "digits.json"), "w") as f:
        json.dump({"sha256": sha, "rows": rows}, f, indent=1)
    with open(os.path.join(DEST, "MODEL_CARD.md"), "w") as f:
        f.write(CARD.format(params=f"{params / 1e6:.2f}M", rows="\n".join(lines),
                            perturbations=perturbations(os.path.join(args.exp, "best.pt"))))
    print(f"shipped {args.exp} into {DEST}: model.onnx, stream.onnx, digits.json, MODEL_CARD.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
