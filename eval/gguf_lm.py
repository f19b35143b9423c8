"""lm-eval backend for a GGUF file, in process through llama-cpp-python (Llama(logits_all=True)).
The llama.cpp server backends of lm-eval give wrong loglikelihoods (off by one token for models without BOS, an offset on the gguf backend: measured against HF),
so scoring reads the logits of the same process that tokenized the text."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from lm_eval.api.model import LM


class GGUFLM(LM):
    def __init__(self, path: str | Path, n_ctx: int = 2048, seed: int = 0):
        super().__init__()
        from llama_cpp import Llama

        self.path = Path(path)
        self.llm = Llama(model_path=str(self.path), n_ctx=n_ctx, logits_all=True, verbose=False, seed=seed)
        self.template = self.llm.metadata.get("tokenizer.chat_template")

    @property
    def tokenizer_name(self) -> str:
        return f"gguf:{self.path.name}"

    def chat_template(self, chat_template=None) -> str:
        return self.template or ""

    def apply_chat_template(self, chat_history: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        eos = self.llm.detokenize([self.llm.token_eos()], special=True).decode(errors="ignore")
        bos = self.llm.detokenize([self.llm.token_bos()], special=True).decode(errors="ignore")
        fmt = Jinja2ChatFormatter(
            self.template, eos_token=eos, bos_token=bos, add_generation_prompt=add_generation_prompt
        )
        return fmt(messages=chat_history).prompt

    def _tokens(self, text: str, add_bos: bool) -> list[int]:
        return self.llm.tokenize(text.encode(), add_bos=add_bos, special=True)

    def _logprobs(self, tokens: list[int]) -> np.ndarray:
        """log p(token[i] | token[:i]) for i >= 1."""
        self.llm.reset()
        self.llm.eval(tokens)
        logits = np.asarray(self.llm.scores[: len(tokens)], dtype=np.float64)
        logits -= logits.max(axis=1, keepdims=True)
        logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        return logp, np.array([logp[i - 1, tokens[i]] for i in range(1, len(tokens))])

    def loglikelihood(self, requests):
        out = []
        for req in requests:
            context, continuation = req.args
            ctx = self._tokens(context, add_bos=True)
            whole = self._tokens(context + continuation, add_bos=True)
            n_cont = max(len(whole) - len(ctx), 1)
            logp, per_token = self._logprobs(whole)
            cont = per_token[-n_cont:]
            greedy = all(
                int(np.argmax(logp[len(whole) - n_cont - 1 + i])) == whole[len(whole) - n_cont + i]
                for i in range(n_cont)
            )
            out.append((float(cont.sum()), bool(greedy)))
        return out

    def loglikelihood_rolling(self, requests):
        return [float(self._logprobs(self._tokens(req.args[0], add_bos=True))[1].sum()) for req in requests]

    def generate_until(self, requests):
        out = []
        eos = self.llm.token_eos()
        for req in requests:
            context, kwargs = req.args
            until = [u for u in (kwargs.get("until") or []) if u]
            max_tokens = int(kwargs.get("max_gen_toks", 256))
            generated: list[int] = []
            text = ""
            for tok in self.llm.generate(
                self._tokens(context, add_bos=True), top_k=1, temp=0.0, repeat_penalty=1.0, reset=True
            ):
                if tok == eos or len(generated) >= max_tokens:
                    break
                generated.append(tok)
                text = self.llm.detokenize(generated).decode(errors="ignore")
                if any(u in text for u in until):
                    break
            for u in until:
                text = text.split(u)[0]
            out.append(text)
        return out

    def close(self) -> None:
        self.llm.close()
