#!/usr/bin/env python3
"""Mutation check of the toolkit's core claims: break one promise at a time, and see the tests fail.

Each mutation below replaces one exact snippet of source with a plausible mistake (an RNN state
not reset at an endpoint, a row's length ignored, a command-line option dropped, a window off by
one...) and names the narrowest tests that guard that promise. For each one the script

1. applies it in a private copy of the repository (the working tree is never touched, so
   Ctrl-C at any moment leaves nothing behind),
2. checks the snippet occurs exactly once in the file (else the mutation is *stale*: the code
   moved on, so update the mutation) and that the mutated file still compiles,
3. runs ``python -m pytest -x -q -p no:cacheprovider TESTS`` in the copy with a timeout,
4. records *caught* (the tests failed) or *missed* (they passed: write the test that fails),
   then restores the file for the next mutation.

Before the mutations, the same tests run once on the unmutated copy (the baseline): a failing
baseline would make every mutation look caught, so the script stops there.

Usage (from the repository root, with the project's environment)::

    python tests/mutation_check.py                   # every mutation; ~5-10 min on 2 cores
    python tests/mutation_check.py --list            # names, files, snippet found?, tests
    python tests/mutation_check.py --only NAME [--only NAME ...]   # or NAME1,NAME2; prefixes work: --only cli-
    python tests/mutation_check.py --jobs 2          # two mutations at a time (one copy each)
    python tests/mutation_check.py --timeout 300 --no-baseline --python .venv/bin/python

It prints one line per mutation as it finishes, then a table (name, result, seconds, first
failing test) and exits 0 when every mutation is caught, 1 when any is missed, stale or in
error, 2 when the baseline fails. ``--keep`` leaves the copy on disk, for a look at a mutant.

Adding a mutation: append a ``Mutation(name, file, find, replace, tests, why)`` to MUTATIONS.
``find`` must occur exactly once in ``file`` (include enough of the line to make it so);
``tests`` are pytest arguments (files or node ids), as narrow as still catches it, since the
whole run should stay within ten minutes on a 2-core machine.

These mutations are chosen by hand; for the ones nobody chose (every operator, constant and
comparison of the pure modules, by mutmut), see ``tests/mutation_tool.sh`` and
``docs/mutation_testing.md``, which also says how the two relate.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutation:
    name: str
    file: str  # relative to the repository root
    find: str  # exact source text, present exactly once
    replace: str
    tests: tuple  # pytest arguments: test files or node ids
    why: str  # the promise this breaks
    note: str = ""  # shown in the table (e.g. which branch holds the test that catches it)


RT, REC = "tests/runtime/test_online.py", "tests/runtime/test_offline.py"
EP, RES, DR = "tests/runtime/test_endpoint.py", "tests/test_audio.py", "tests/decoding/test_result.py"

MUTATIONS = [
    # --- streaming runtime (asr/runtime) -----------------------------------------------------
    Mutation("online-endpoint-keeps-rnn-state", "asr/runtime/online.py",
             "        self.states = self._owner.model.init_states(1)\n", "",
             (f"{RT}::test_an_endpoint_restarts_the_rnn_state",),
             "after an endpoint the next utterance starts from zero RNN states"),
    Mutation("online-window-lengths-wrong", "asr/runtime/online.py",
             "        return w, valid\n", "        return w, win\n",
             (f"{RT}::test_streaming_equals_pytorch_chunked_forward",),
             "the last, zero-padded window says how many of its frames are real"),
    Mutation("online-keeps-frames-past-the-end", "asr/runtime/online.py",
             "keep = min(keep, (self._usable_frames - self._start) // info.subsampling)", "keep = keep",
             (f"{RT}::test_streaming_equals_pytorch_chunked_forward",),
             "at the end of input only the model frames that exist are kept"),
    Mutation("online-states-stacked-in-wrong-order", "asr/runtime/model.py",
             "return [np.concatenate(parts, axis=1) for parts in zip(*per_stream)]",
             "return [np.concatenate(parts[::-1], axis=1) for parts in zip(*per_stream)]",
             (f"{RT}::test_batched_streams_equal_each_alone",),
             "batched streams each get their own states back"),
    Mutation("online-stream-hotwords-dropped", "asr/runtime/online.py",
             "functools.partial(decoder.search, hotwords=hotwords,", "functools.partial(decoder.search, hotwords=None,",
             ("tests/decoding/test_options.py::test_per_stream_hotwords",),
             "hotwords given to one stream bias its final text"),
    Mutation("model-file-kind-by-name", "asr/runtime/model.py",
             "    if zipfile.is_zipfile(path):\n", "    if path.endswith(\".pt\"):\n",
             ("tests/runtime/test_model.py::test_model_file_kind_from_the_bytes_not_the_name",),
             "a checkpoint is told from an ONNX model by its bytes, whatever its name"),
    Mutation("endpoint-trailing-silence-off-by-one", "asr/runtime/endpoint.py",
             "self.trailing_blanks = best.size - 1 - int(speech[-1])", "self.trailing_blanks = best.size - int(speech[-1])",
             (EP,), "trailing non-speech is counted from the frame after the last speech frame"),
    Mutation("endpoint-rule2-one-frame-late", "asr/runtime/endpoint.py",
             "has_speech and trailing_silence_s + eps >= cfg.rule2", "has_speech and trailing_silence_s - eps > cfg.rule2",
             (EP,), "rule 2 fires as soon as the trailing silence reaches its length"),
    Mutation("resampler-flush-drops-tail", "asr/audio.py",
             "out = self._stream.resample_chunk(np.zeros(0, np.float32), last=True)", "out = np.zeros(0, np.float32)",
             (f"{RES}::test_streaming_resampler_matches_whole_signal",),
             "the streaming resampler's flush gives the last samples"),
    Mutation("offline-backend-ignores-lengths", "asr/runtime/offline.py",
             "return [logp[row, : int(n)] for row, n in enumerate(out_len)]", "return [logp[row] for row, n in enumerate(out_len)]",
             (f"{REC}::test_batch_reports_a_bad_item_and_transcribes_the_others_as_alone",),
             "an input in a padded ONNX batch is transcribed as alone"),
    # --- PyTorch backend, model, front end -----------------------------------------------------
    Mutation("torch-backend-ignores-lengths", "asr/train/backend.py",
             "return [logp[row, : int(n)] for row, n in enumerate(out_len)]", "return [logp[row] for row, n in enumerate(out_len)]",
             (f"{REC}::test_batch_reports_a_bad_item_and_transcribes_the_others_as_alone",),
             "an input in a padded checkpoint batch is transcribed as alone"),
    Mutation("model-forward-state-after-right-context", "asr/train/model.py",
             "y_right, _ = self.fwd(window[:, chunk:], new_state)", "y_right, new_state = self.fwd(window[:, chunk:], new_state)",
             ("tests/train/test_model.py::test_forward_direction_carries_its_state_from_after_the_chunk",),
             "the forward RNN carries its state from after the chunk, not after the right context"),
    Mutation("model-stream-step-ignores-lengths", "asr/train/model.py",
             "        valid = self.subsampling.output_lengths(lengths)\n",
             "        valid = torch.full_like(lengths, x.shape[1])\n",
             ("tests/train/test_model.py::test_stream_steps_equal_chunked_forward",),
             "the streaming step's backward RNN reads only the valid frames of a padded last window"),
    Mutation("model-backward-reads-padding", "asr/train/model.py",
             "idx = torch.where(t < lengths, lengths - 1 - t, t)", "idx = (x.shape[1] - 1 - t).expand(x.shape[0], -1)",
             ("tests/train/test_model.py::test_padded_batch_equals_single_utterances",),
             "padded batches give the outputs of single utterances"),
    Mutation("frontend-window-symmetric", "asr/frontend.py",
             "win = 0.5 - 0.5 * np.cos(2.0 * math.pi * n / cfg.win_length)",
             "win = 0.5 - 0.5 * np.cos(2.0 * math.pi * n / (cfg.win_length - 1))",
             ("tests/test_frontend.py::test_numpy_equals_torch",),
             "the numpy front end (periodic Hann window) equals the training front end"),
    Mutation("frontend-mel-not-area-normalized", "asr/frontend.py",
             "fb *= (2.0 / (f_pts[2 : cfg.n_mels + 2] - f_pts[: cfg.n_mels]))[None, :]", "fb = fb",
             ("tests/test_frontend.py::test_filterbank_matches_torchaudio",),
             "the mel filterbank is torchaudio's (slaney area normalization)"),
    Mutation("frontend-online-drops-a-sample", "asr/frontend.py",
             "self._buffer = buf[t * self.cfg.hop_length :].copy()", "self._buffer = buf[t * self.cfg.hop_length + 1 :].copy()",
             ("tests/test_frontend.py::test_online_equals_offline_with_random_pieces",),
             "streaming log-mel equals log-mel of the whole signal"),
    # --- checkpoints, training, distributed ---------------------------------------------------
    Mutation("checkpoint-without-normalization", "asr/train/checkpoint.py",
             '"model": model.state_dict(),',
             '"model": {k: v for k, v in model.state_dict().items() if k not in ("feat_mean", "feat_std")},',
             (f"{REC}::test_checkpoint_and_onnx_give_the_same_text",),
             "a checkpoint holds the normalization statistics"),
    Mutation("checkpoint-without-tokenizer", "asr/train/checkpoint.py",
             '        "tokenizer": tokenizer.to_dict(),\n', "",
             (f"{REC}::test_checkpoint_and_onnx_give_the_same_text",),
             "a checkpoint holds its vocabulary"),
    Mutation("training-resume-without-rng", "asr/train/trainer.py",
             '        torch.set_rng_state(own["rng"] if own is not None else state["rng"])\n', "",
             ("tests/train/test_trainer.py::test_resume_after_a_crash_gives_identical_weights",),
             "--resume restores the random state: the same weights as a run never stopped"),
    Mutation("elastic-restart-reseeds-other-ranks", "asr/train/trainer.py",
             "own = per_rank[dist.rank] if per_rank is not None and len(per_rank) == dist.world else None",
             "own = None",
             ("tests/train/test_elastic.py",),
             "a restarted torchrun group restores every process's random state: the same weights as a run never killed"),
    Mutation("training-loss-not-divided-by-accum-steps", "asr/train/trainer.py",
             "/ (len(lengths) * n_micro)", "/ len(lengths)",
             ("tests/train/test_trainer.py",),
             "accumulating N batches gives the gradient of their mean, not N times it",
             note="the test that catches this is being added on another branch (tests/train/test_trainer.py)"),
    Mutation("distributed-ranks-share-batches", "asr/train/trainer.py",
             "mine = [batches[g + a * dist.world + dist.rank] for g in", "mine = [batches[g + a * dist.world] for g in",
             ("tests/train/test_distributed.py::test_two_processes_match_one_with_accumulation",),
             "each process takes its own share of a step's batches"),
    # --- decoding --------------------------------------------------------------------------------
    Mutation("greedy-no-merge", "asr/decoding/greedy.py",
             "starts = np.flatnonzero(np.r_[True, best[1:] != best[:-1]])", "starts = np.arange(best.size)",
             ("tests/decoding/test_greedy.py",),
             "greedy CTC merges repeated symbols"),
    Mutation("greedy-stream-splits-runs-at-chunk-borders", "asr/decoding/greedy.py",
             "if new and new[0][1] == start and new[0][0] == self._prev:", "if False:",
             ("tests/decoding/test_greedy.py::test_stream_decoder_equals_the_whole_in_any_chunks",),
             "a run that goes on into the next chunk stays one token (streaming greedy equals the whole)"),
    Mutation("words-end-one-frame-early", "asr/decoding/result.py",
             "round((tokens[current[-1]][2] + 1) * frame_shift_s, 3)", "round(tokens[current[-1]][2] * frame_shift_s, 3)",
             (f"{DR}::test_alignment_words_and_times",),
             "a word ends one frame after its last token's last frame"),
    Mutation("decoding-default-beam-not-applied", "asr/decoding/options.py",
             "DEFAULT_BEAM if beam else 0", "1 if beam else 0",
             ("tests/decoding/test_options.py::test_default_beam_and_a_given_beam",),
             "an LM or hotwords without a beam size search with DEFAULT_BEAM"),
    Mutation("decoding-imports-torch", "asr/decoding/options.py",
             "    def _beam(self, o: DecodingOptions) -> CtcBeamSearch:\n",
             "    def _beam(self, o: DecodingOptions) -> CtcBeamSearch:\n        import torch  # noqa: F401\n",
             ("tests/decoding/test_options.py::test_lm_and_hotwords_run_where_torch_cannot_be_imported",),
             "beam search with LMs and hotwords runs without torch"),
    # --- command line ---------------------------------------------------------------------------
    Mutation("cli-transcribe-drops-options", "asr/cli/transcribe.py",
             "rec = load_recognizer(model_path(args), options, args.threads)",
             "rec = load_recognizer(model_path(args), None, args.threads)",
             ("tests/cli/test_transcribe.py::test_decoding_options_reach_the_recognizer",),
             "asr transcribe decodes with --lm/--hotword/--beam-size"),
    Mutation("cli-stream-drops-options", "asr/cli/stream.py",
             "rec = OnlineRecognizer(model, endpoint=endpoint, decoding=options)",
             "rec = OnlineRecognizer(model, endpoint=endpoint)",
             ("tests/cli/test_stream.py::test_decoding_options_reach_the_decoder",),
             "asr-stream decodes finished utterances with --lm/--hotword"),
    Mutation("cli-stream-offline-drops-options", "asr/cli/stream.py",
             "rec = OfflineRecognizer(OnnxBackend(model), options)", "rec = OfflineRecognizer(OnnxBackend(model))",
             ("tests/cli/test_stream.py::test_decoding_options_reach_the_decoder",),
             "asr-stream on an offline graph decodes with --lm/--hotword"),
    Mutation("cli-options-drop-lm", "asr/cli/options.py",
             "lm=args.lm, char_lm=args.char_lm,", "lm=None, char_lm=args.char_lm,",
             ("tests/cli/test_transcribe.py::test_decoding_options_reach_the_recognizer",),
             "--lm reaches DecodingOptions"),
    Mutation("cli-evaluate-exits-0-when-incomplete", "asr/cli/evaluate.py",
             "return 0 if args.allow_skipped else EXIT_INCOMPLETE", "return 0",
             ("tests/test_evaluate.py::test_evaluate_command_reports_and_exits_3_unless_allowed",),
             "asr evaluate exits 3 when entries were not scored, unless --allow-skipped"),
    # --- inputs, manifests, evaluation -----------------------------------------------------------
    Mutation("audio-fifo-not-refused", "asr/audio.py",
             "    if not stat.S_ISREG(st.st_mode):\n", "    if False:\n",
             ("tests/cli/test_transcribe.py::test_a_fifo_path_is_refused_with_its_own_message",
              "tests/cli/test_stream.py::test_a_fifo_is_reported_and_the_next_file_still_streams"),
             "a pipe given by path is refused with its own message, not read or called empty"),
    Mutation("audio-int16-not-scaled", "asr/audio.py",
             "a = a.astype(np.float32) / 32768.0", "a = a.astype(np.float32)",
             (f"{REC}::test_int_pcm_is_scaled_like_float",),
             "int16 PCM arrays are scaled to [-1, 1]"),
    Mutation("recognizer-short-input-reaches-backend", "asr/runtime/offline.py",
             "if fe.num_frames(w.shape[0]) >= sub]", "if fe.num_frames(w.shape[0]) >= 1]",
             (f"{REC}::test_input_shorter_than_one_model_frame_gives_empty_text",),
             "an input shorter than one model frame gives empty text on every backend"),
    Mutation("manifest-bom-not-stripped", "asr/manifest.py",
             'raw.decode("utf-8-sig" if lineno == 1 else "utf-8")', 'raw.decode("utf-8")',
             ("tests/test_manifest.py",),
             "a byte-order mark does not cost the first utterance"),
    Mutation("manifest-non-utf8-aborts", "asr/manifest.py",
             "except (ManifestError, UnicodeDecodeError) as exc:", "except ManifestError as exc:",
             ("tests/test_manifest.py",),
             "a line that is not UTF-8 is named and skipped, the others read"),
    Mutation("evaluate-forgets-malformed-lines", "asr/evaluate.py",
             "entries = read_manifest(manifest, problems=malformed)", "entries = read_manifest(manifest)",
             ("tests/test_evaluate.py",),
             "malformed manifest lines are counted in the report"),
    Mutation("evaluate-complete-ignores-malformed-lines", "asr/evaluate.py",
             "return not self.skipped and not self.malformed", "return not self.skipped",
             ("tests/test_evaluate.py",),
             "an evaluation with malformed lines is not complete (exit status 3)"),
    # --- export ------------------------------------------------------------------------------------
    Mutation("export-parity-compares-runtime-with-itself", "asr/train/export.py",
             "worst = max(worst, float(np.abs(ref[i, :n].numpy() - g).max()))", "worst = max(worst, float(np.abs(g - g).max()))",
             ("tests/train/test_export.py::test_parity_check_compares_the_runtime_with_pytorch",),
             "an export is checked against PyTorch"),
    # --- issue 30 item 11: an independent audit's bugs that no test caught before ----------------
    # (tests/mutation_tool.sh runs mutmut's automatic mutants too: docs/mutation_testing.md)
    Mutation("audit-blocks-duration-at-output-rate", "asr/audio.py",
             "self.duration = frames / self.input_rate", "self.duration = frames / self.rate",
             ("tests/test_audio.py::test_blocks_duration_is_the_input_length_at_any_output_rate",),
             "a file's duration is its own length, whatever rate it is read at (it picks long-form)"),
    Mutation("audit-online-ready-one-hop-late", "asr/runtime/online.py",
             "return self._buf.shape[0] >= self._info.window_frames",
             "return self._buf.shape[0] >= self._info.window_frames + self._info.hop_frames",
             (f"{RT}::test_ready_exactly_when_a_window_is_full",),
             "a stream is ready as soon as it holds a whole window"),
    Mutation("audit-hotword-broken-match-keeps-bonus", "asr/decoding/beam_search.py",
             "                part = 0.0  # the match (if any) broke", "                pass  # the match (if any) broke",
             ("tests/decoding/test_beam_search.py::test_a_broken_match_takes_its_bonus_back_before_the_next_match",),
             "a hotword match that breaks gives its provisional bonus back"),
    Mutation("audit-hotword-row-keeps-provisional-bonus", "asr/decoding/beam_search.py",
             "base = node.bonus - node.hpart", "base = node.bonus",
             ("tests/decoding/test_beam_search.py::test_search_scores_of_children_equal_their_bonus",),
             "the search scores an extension with the bonus its child will have"),
    Mutation("audit-kn-discount-formula", "asr/decoding/lm.py",
             "return n1 / (n1 + 2 * n2)", "return n1 / (n1 + n2)",
             ("tests/decoding/test_lm.py::test_estimated_discounts_by_hand",),
             "the estimated Kneser-Ney discount is n1 / (n1 + 2 n2)"),
    Mutation("audit-vad-min-silence-one-frame-late", "asr/vad.py",
             "elif f - self._last_speech >= self.min_silence:", "elif f - self._last_speech > self.min_silence:",
             ("tests/test_vad.py::test_min_silence_is_exact_to_the_frame",),
             "a pause of exactly min_silence_s ends a segment"),
    Mutation("audit-vad-padding-not-capped", "asr/vad.py",
             "self.pad = int(round(min(o.pad_s, o.min_silence_s) * self.rate))", "self.pad = int(round(o.pad_s * self.rate))",
             ("tests/test_vad.py::test_padding_is_capped_by_min_silence",),
             "padding is at most min_silence_s"),
    Mutation("audit-subtitle-times-truncated", "asr/writers.py",
             "ms = int(round(max(0.0, seconds) * 1000))", "ms = int(max(0.0, seconds) * 1000)",
             ("tests/test_writers.py::test_timestamps_round_to_the_millisecond",),
             "subtitle times are rounded to the millisecond"),
    Mutation("audit-subtitle-full-line-split", "asr/writers.py",
             "if len(text) <= o.max_line_chars and", "if len(text) < o.max_line_chars and",
             ("tests/test_writers.py::test_a_line_of_exactly_the_maximum_length_is_kept_whole",),
             "a subtitle line may be exactly max_line_chars long"),
    Mutation("audit-server-loop-no-rotation", "asr/server/loop.py",
             "if id(s) in stepped or s.waiting_since is None:", "if s.waiting_since is None:",
             ("tests/server/test_loop.py::test_max_batch_one_takes_the_streams_in_turn",),
             "a stepped stream goes to the back of the queue (no stream starves the others)"),
    Mutation("audit-wer-ignores-insertions-over-empty-reference", "asr/metrics.py",
             "            i += len(hyp.split())\n", "            i += 0\n",
             ("tests/test_metrics.py::test_insertions_over_an_empty_reference_count",),
             "words hallucinated over an empty reference are insertions"),
    Mutation("audit-kaldi-segment-not-capped", "asr/corpora/kaldi.py",
             "offset, duration = start, min(stop, file_duration) - start", "offset, duration = start, stop - start",
             ("tests/corpora/test_kaldi.py::test_a_segment_just_past_the_end_is_capped_at_the_end",),
             "a segment that ends within the tolerance past its file is cut at the file's end"),
    Mutation("audit-calibrate-heldout-uses-all-words", "asr/calibrate.py",
             "m = ConfidenceCalibration.fit(raw_a[train], right_a[train])", "m = cal",
             ("tests/test_calibrate.py::test_heldout_error_uses_maps_fitted_without_the_fold",),
             "held-out calibration error scores each fold with a map fitted without it"),
    Mutation("audit-epoch-snapshots-by-name", "asr/train/checkpoint.py",
             "return [p for _, p in sorted(found)]", "return sorted(p for _, p in found)",
             ("tests/train/test_checkpoint.py::test_epoch_snapshots_come_in_epoch_order",),
             "epoch-10.pt comes after epoch-9.pt (asr average --last N)"),
    Mutation("audit-final-decoder-times-from-utterance-start", "asr/decoding/greedy.py",
             "self.utterance_start, self.calibration, self.alternatives)",
             "0, self.calibration, self.alternatives)",
             (f"{DR}::test_stream_word_times_count_from_the_start_of_the_stream",),
             "word times of a later utterance count from the start of the stream"),
    Mutation("audit-stream-frames-from-chunk-start", "asr/decoding/greedy.py",
             "start = self.num_frames  # the chunk's first frame in the stream", "start = 0",
             (f"{DR}::test_stream_word_times_count_from_the_start_of_the_stream",),
             "token frames count from the start of the stream, not of the chunk"),
    Mutation("audit-pieces-word-ends-at-first-piece", "asr/decoding/result.py",
             "round((tokens[current[-1]][2] + 1) * frame_shift_s, 3)", "round((tokens[current[0]][2] + 1) * frame_shift_s, 3)",
             (f"{DR}::test_word_piece_words_and_times",),
             "a word of several tokens ends with its last token"),
    Mutation("manifest-index-reads-a-changed-file", "asr/manifest.py",
             "if (st.st_size, st.st_mtime_ns) != self._stamp:", "if False:",
             ("tests/test_manifest.py::test_an_index_keeps_the_manifest_on_disk_and_reads_what_read_manifest_reads",),
             "a manifest edited after it was indexed is an error, not other data read at old offsets"),
    Mutation("on-the-fly-nonspeech-joins-strings", "asr/train/data.py",
             "(self._kind & (_NONSPEECH | _TARGET) == _TARGET)", "(self._kind & _TARGET == _TARGET)",
             ("tests/train/test_data.py::test_connected_strings_join_items_with_their_gaps_gains_and_targets",),
             "generated non-speech never joins a connected string when the items are kept in columns too"),
]


# --- running -----------------------------------------------------------------------------------

@dataclass
class Outcome:
    mutation: Mutation
    result: str  # caught, missed, stale, error
    seconds: float = 0.0
    detail: str = ""  # first failing test, or why stale / in error


def repo_files(root: Path) -> list[str]:
    """The files a checkout holds: tracked, plus untracked ones git does not ignore."""
    try:
        out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=root,
                             capture_output=True, check=True).stdout
        return sorted({p for p in out.decode().split("\0") if p and (root / p).is_file()})
    except (OSError, subprocess.CalledProcessError):  # not a git checkout: everything but the usual clutter
        skip = {".git", ".venv", "data", "exp", "__pycache__", ".pytest_cache"}
        return sorted(str(p.relative_to(root)) for p in root.rglob("*")
                      if p.is_file() and not skip.intersection(p.relative_to(root).parts))


def make_copy(root: Path, dest: Path, files: list[str]) -> None:
    for rel in files:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / rel, target)


def snippet_problem(m: Mutation, root: Path) -> Optional[str]:
    """Why ``m`` cannot be applied to the source under ``root`` (None: it can)."""
    path = root / m.file
    if not path.is_file():
        return f"{m.file} not found"
    n = path.read_text(encoding="utf-8").count(m.find)
    if n != 1:
        return f"snippet found {n} times in {m.file} (need exactly 1): {m.find.strip()[:60]!r}"
    missing = [t.split("::")[0] for t in m.tests if not (root / t.split("::")[0]).exists()]
    if missing:
        return f"test file(s) not found: {', '.join(missing)}"
    return None


def run_pytest(python: str, copy: Path, tests, timeout: float, basetemp: Path) -> tuple[int, str, float]:
    """(pytest exit status, or None on timeout; its output; seconds)."""
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", OMP_NUM_THREADS="1",
               PYTHONPATH=str(copy) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    basetemp.parent.mkdir(parents=True, exist_ok=True)  # pytest makes (and empties) basetemp itself
    cmd = [python, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", f"--basetemp={basetemp}", *tests]
    t0 = time.monotonic()
    try:
        proc = subprocess.run(cmd, cwd=copy, env=env, capture_output=True, text=True, timeout=timeout)
        return proc.returncode, proc.stdout + proc.stderr, time.monotonic() - t0
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"").decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        return None, out, time.monotonic() - t0


def first_failure(output: str) -> str:
    for line in output.splitlines():
        if line.startswith(("FAILED ", "ERROR ")):
            return line.split(" - ")[0][:110]
    lines = [line for line in output.splitlines() if line.strip()]
    return lines[-1][:110] if lines else ""


def check_one(m: Mutation, copy: Path, python: str, timeout: float, scratch: Path) -> Outcome:
    problem = snippet_problem(m, copy)
    if problem:
        return Outcome(m, "stale", 0.0, problem)
    path = copy / m.file
    original = path.read_text(encoding="utf-8")
    mutated = original.replace(m.find, m.replace, 1)
    try:
        compile(mutated, str(path), "exec")
    except SyntaxError as exc:
        return Outcome(m, "error", 0.0, f"the mutated file does not compile: {exc}")
    try:
        path.write_text(mutated, encoding="utf-8")
        rc, output, seconds = run_pytest(python, copy, m.tests, timeout, scratch / m.name)
    finally:
        path.write_text(original, encoding="utf-8")  # restored whatever happened
    if rc is None:
        return Outcome(m, "caught", seconds, f"timed out after {timeout:g} s (the tests hang)")
    if rc == 0:
        return Outcome(m, "missed", seconds, "the tests passed")
    if rc in (1, 2, 3):  # failures; interrupted (e.g. an import error the mutation caused); internal error
        return Outcome(m, "caught", seconds, first_failure(output))
    return Outcome(m, "error", seconds, f"pytest exit status {rc}: {first_failure(output)}")  # usage, nothing collected


def select(names: list[str]) -> list[Mutation]:
    if not names:
        return list(MUTATIONS)
    wanted = [n for arg in names for n in arg.split(",") if n]
    chosen = [m for m in MUTATIONS if any(m.name == w or m.name.startswith(w) for w in wanted)]
    unknown = [w for w in wanted if not any(m.name == w or m.name.startswith(w) for m in MUTATIONS)]
    if unknown:
        raise SystemExit(f"unknown mutation(s): {', '.join(unknown)} (see --list)")
    return chosen


def print_list(mutations: list[Mutation]) -> None:
    for m in mutations:
        problem = snippet_problem(m, ROOT)
        print(f"{m.name}\n    {m.file}: {'ok' if problem is None else 'STALE: ' + problem}\n"
              f"    breaks: {m.why}\n    tests: {' '.join(m.tests)}" + (f"\n    note: {m.note}" if m.note else ""))


def print_table(outcomes: list[Outcome]) -> None:
    width = max(len(o.mutation.name) for o in outcomes)
    print(f"\n{'mutation':<{width}}  {'result':<7} {'s':>6}  first failing test / why")
    print(f"{'-' * width}  {'-' * 7} {'-' * 6}  {'-' * 40}")
    for o in outcomes:
        detail = o.detail + (f" [{o.mutation.note}]" if o.mutation.note and o.result != "caught" else "")
        print(f"{o.mutation.name:<{width}}  {o.result:<7} {o.seconds:>6.1f}  {detail}")
    counts = {r: sum(o.result == r for o in outcomes) for r in ("caught", "missed", "stale", "error")}
    print(f"\n{len(outcomes)} mutations: " + ", ".join(f"{n} {r}" for r, n in counts.items()))


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(description="Apply each mutation of the core code in a copy of the repository "
                                "and check that its tests catch it.")
    p.add_argument("--list", action="store_true", help="list the mutations (and whether each snippet is found) and exit")
    p.add_argument("--only", action="append", default=[], metavar="NAME",
                   help="run only these mutations (repeatable, comma-separated, or a name prefix)")
    p.add_argument("--jobs", type=int, default=1, help="mutations checked at once, each in its own copy (default 1)")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds per mutation's tests (default 300)")
    p.add_argument("--python", default=sys.executable, help="interpreter that runs pytest (default: this one)")
    p.add_argument("--no-baseline", action="store_true", help="skip running the tests on the unmutated code first")
    p.add_argument("--keep", action="store_true", help="keep the copies (their paths are printed)")
    args = p.parse_args(argv)

    mutations = select(args.only)
    if args.list:
        print_list(mutations)
        return 0
    files = repo_files(ROOT)
    tmp = Path(tempfile.mkdtemp(prefix="mutation_check_"))
    t0 = time.monotonic()
    try:
        copies = []
        for j in range(max(1, min(args.jobs, len(mutations)))):
            copy = tmp / f"copy{j}"
            make_copy(ROOT, copy, files)
            copies.append(copy)
        if not args.no_baseline:
            tests = list(dict.fromkeys(t for m in mutations for t in m.tests if snippet_problem(m, copies[0]) is None))
            print(f"baseline: {len(tests)} test selections on the unmutated code ...", file=sys.stderr, flush=True)
            rc, output, seconds = run_pytest(args.python, copies[0], tests, args.timeout * 2, tmp / "pytest" / "baseline")
            if rc != 0:
                print(output[-4000:], file=sys.stderr)
                print(f"baseline FAILED (pytest exit status {rc}) after {seconds:.0f} s: fix the tests before "
                      "checking mutations", file=sys.stderr)
                return 2
            print(f"baseline passed in {seconds:.0f} s", file=sys.stderr, flush=True)
        free = list(copies)
        outcomes: dict[str, Outcome] = {}

        def work(m: Mutation) -> Outcome:
            copy = free.pop()
            try:
                return check_one(m, copy, args.python, args.timeout, tmp / "pytest")
            finally:
                free.append(copy)

        with ThreadPoolExecutor(max_workers=len(copies)) as pool:
            futures = [pool.submit(work, m) for m in mutations]
            try:
                for f in as_completed(futures):
                    o = f.result()
                    outcomes[o.mutation.name] = o
                    print(f"[{len(outcomes)}/{len(mutations)}] {o.mutation.name}: {o.result} ({o.seconds:.1f} s)",
                          file=sys.stderr, flush=True)
            except KeyboardInterrupt:
                for f in futures:
                    f.cancel()
                raise
        ordered = [outcomes[m.name] for m in mutations]
        print_table(ordered)
        print(f"total {time.monotonic() - t0:.0f} s")
        return 0 if all(o.result == "caught" for o in ordered) else 1
    except KeyboardInterrupt:
        print("\ninterrupted: the working tree was never modified", file=sys.stderr)
        return 130
    finally:
        if args.keep:
            print(f"copies kept in {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
