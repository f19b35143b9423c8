"""The two ways `make chat` runs a model, behind one interface: prompt(messages) is the exact text the model
sees (its chat template), stream(messages, defaults) yields the reply as it is generated and leaves `finish`
at "stop" (the template's end of turn) or "length" (MAX_NEW_TOKENS reached first).

- GGUF: llama-cpp-python's create_chat_completion with the GGUF's own template, through the same
  Jinja2ChatFormatter that llama-cpp-python builds from the GGUF's metadata, its end-of-turn token a stop.
- HF: transformers generate (merged model, or base + adapter through peft), the tokenizer's chat template,
  streamed with TextIteratorStreamer; the template's end-of-turn token ends the reply.
Sampling is only what the recipe names: temperature (0 = greedy) and top_p; no top-k, min-p or repeat penalty."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

from core import manifest, rundir
from core.errors import UserError, Where
from tools.serve import gguf_info
from tools.serve.defaults import ChatDefaults
from tools.serve.template import end_of_turn

N_CTX = 4096


class ContextFull(Exception):
    pass


class GgufEngine:
    def __init__(self, path: Path, n_ctx: int = N_CTX):
        info = gguf_info.read(path)  # a damaged file or one without a template is refused before llama.cpp loads
        template = gguf_info.require_template(info)
        from llama_cpp import Llama
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self.name = path.name
        self.end_of_turn = end_of_turn(template, info.specials, info.bos, info.eos)
        stop_ids = [i for i in (info.eos_id, info.ids.get(self.end_of_turn or "")) if i is not None]
        self.formatter = Jinja2ChatFormatter(template, eos_token=info.eos, bos_token=info.bos, stop_token_ids=stop_ids)
        self.n_ctx = min(info.context_length or n_ctx, n_ctx)
        try:
            self.llm = Llama(
                model_path=str(path),
                n_ctx=self.n_ctx,
                chat_handler=self.formatter.to_chat_handler(),
                verbose=False,
            )
        except (ValueError, RuntimeError) as exc:
            raise UserError(
                f"llama.cpp cannot load this GGUF ({exc})", Where(path), "rebuild it with make gguf"
            ) from None
        self.finish: str | None = None

    def prompt(self, messages: list[dict]) -> str:
        return self.formatter(messages=messages).prompt

    def stream(self, messages: list[dict], d: ChatDefaults) -> Iterator[str]:
        self.finish = None
        try:
            chunks = self.llm.create_chat_completion(
                messages=messages,
                stream=True,
                temperature=d.temperature,
                top_p=d.top_p if d.top_p is not None else 1.0,
                top_k=0,
                min_p=0.0,
                repeat_penalty=1.0,
                max_tokens=d.max_new_tokens,
                stop=[self.end_of_turn] if self.end_of_turn else None,
            )
            try:
                for chunk in chunks:
                    choice = chunk["choices"][0]
                    text = choice["delta"].get("content")
                    if text:
                        yield text
                    if choice.get("finish_reason"):
                        self.finish = choice["finish_reason"]
            finally:
                chunks.close()  # a reply stopped by Ctrl-C: llama-cpp-python's generator ends now, not at exit
        except ValueError as exc:
            if "exceed context window" in str(exc):
                raise ContextFull(f"the conversation no longer fits the context ({self.n_ctx} tokens)") from None
            raise

    def close(self) -> None:
        self.llm.close()


class HfEngine:
    def __init__(self, run: Path, adapter: bool = False):
        m = manifest.read(run)
        merged = m.merge is not None and not adapter
        # the run's files are checked before torch loads: the adapter (complete, unchanged) and its base model
        folder = rundir.merged_model(run) if merged else rundir.final_adapter(run)
        base = None if merged or m.train.base_model is None else m.train.base_model.path
        if not merged and base is None:
            raise UserError("the manifest names no base model", Where(run / manifest.MANIFEST, key="train.base_model"))
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype = torch.bfloat16 if self.device == "cuda" else torch.float32
        if merged:
            self.name = f"{folder} (merged)"
            self.model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype)
            self.tok = AutoTokenizer.from_pretrained(folder)
        else:
            from peft import PeftModel

            self.name = f"{base} + adapter {folder}"
            self.model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base, dtype=dtype), folder)
            has_tok = (folder / "tokenizer_config.json").is_file()
            self.tok = AutoTokenizer.from_pretrained(folder if has_tok else base)
        self.model.to(self.device).eval()
        if not self.tok.chat_template:
            raise UserError("the tokenizer has no chat template", Where(folder), "set chat_template in the recipe")
        specials = [*self.tok.all_special_tokens, *self.tok.get_added_vocab()]
        self.end_of_turn = end_of_turn(
            self.tok.chat_template, specials, self.tok.bos_token or "", self.tok.eos_token or ""
        )
        ids = {self.tok.eos_token_id}
        if self.end_of_turn:
            ids.add(self.tok.convert_tokens_to_ids(self.end_of_turn))
        self.stop_ids = sorted(i for i in ids if i is not None)
        self.finish: str | None = None
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None

    def prompt(self, messages: list[dict]) -> str:
        return self.tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def stream(self, messages: list[dict], d: ChatDefaults) -> Iterator[str]:
        from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

        stop = self._stop
        stop.clear()

        class Interrupted(StoppingCriteria):
            def __call__(self, input_ids, scores, **kwargs) -> bool:
                return stop.is_set()

        self.finish = None
        ids = self.tok(self.prompt(messages), add_special_tokens=False, return_tensors="pt").to(self.device)
        # no clean-up pass: it is for WordPiece, would drop spaces before punctuation in BPE text (and warns)
        streamer = TextIteratorStreamer(
            self.tok, skip_prompt=True, skip_special_tokens=True, clean_up_tokenization_spaces=False
        )
        sampling = {"do_sample": False}
        if d.temperature > 0:
            sampling = {"do_sample": True, "temperature": d.temperature, "top_p": d.top_p or 1.0, "top_k": 0}
        result: dict = {}

        def run() -> None:
            try:
                result["out"] = self.model.generate(
                    **ids,
                    **sampling,
                    max_new_tokens=d.max_new_tokens,
                    eos_token_id=self.stop_ids,
                    pad_token_id=self.tok.pad_token_id if self.tok.pad_token_id is not None else self.stop_ids[0],
                    streamer=streamer,
                    stopping_criteria=StoppingCriteriaList([Interrupted()]),
                )
            except BaseException as exc:  # noqa: BLE001 - re-raised in the chat's thread below
                result["error"] = exc
                streamer.end()  # the reader waits for the streamer's end: without it the chat would wait forever

        self._worker = worker = threading.Thread(target=run, daemon=True)
        worker.start()
        try:
            yield from streamer
        finally:
            stop.set()  # Ctrl-C while streaming: generation stops at the next token
            worker.join()
        if "error" in result:
            raise result["error"]
        new = result["out"][0][ids["input_ids"].shape[1] :].tolist()
        self.finish = "stop" if new and new[-1] in self.stop_ids else "length"

    def close(self) -> None:
        """No generation outlives the chat: a daemon thread still inside torch when Python exits can crash it."""
        self._stop.set()
        if self._worker is not None:
            self._worker.join()
