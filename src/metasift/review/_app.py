"""The web app: one page, a JSON API under ``/api``, pictures under ``/pictures/ID/VIEW``.

Safe by default: a server on this machine only answers requests addressed to this machine
(a page elsewhere cannot reach it through DNS rebinding); one on another address asks for the
token printed at its start. Pictures are served by their id in the results, never by a path
from the request. Changes come only by POST, as JSON, from a page of the same origin.
"""

import secrets
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ._export import export_manifest, export_results
from ._images import KINDS, NotAvailable, Views
from ._page import PAGE
from ._run import Run
from ._store import ReviewConflict, Store

LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}
PAGE_SIZE = 60  # thumbnails a page of the grid shows
MAX_PAGE = 500
COOKIE = "metasift_review"
SORTS = ("order", "p_reject_desc", "p_reject_asc", "count_asc", "count_desc")
STATUSES = ("unreviewed", "reviewed", "changed", "noted")


@dataclass
class Review:
    """A run and its review state: what the app serves and the exports read."""

    run: Run
    store: Store
    views: Views
    reviewer: str = "unknown"
    manifest: Path | None = None  # where the page's Export writes the training manifest
    reviewed_results: Path | None = None  # and the results with the reviewed columns
    confident: float | None = None  # the machine's calls to add to the manifest

    def item(self, picture, states: dict, *, with_state: bool = True) -> dict:
        review = states.get(picture.key) or {}
        item = {
            "id": picture.id,
            "name": picture.name,
            "decision": picture.decision,
            "reasons": list(picture.reasons),
            "p_reject": picture.p_reject,
            "count": picture.count,
            "agreement": picture.agreement,
            "review": {k: review.get(k) for k in ("decision", "reasons", "count", "note")},
            "changed": changed(picture, review),
        }
        if with_state:
            item["file"] = self.run.state(picture)
        return item

    def select(self, states: dict, *, decision="", reason="", agreement="", status="",
               min_count=None, max_count=None, sort="order") -> list:  # fmt: skip
        """The pictures a filter lets through, in the order asked for."""
        out = []
        for p in self.run.pictures:
            review = states.get(p.key)
            if decision and p.decision != decision:
                continue
            if reason and reason not in p.reasons:
                continue
            if agreement and p.agreement != agreement:
                continue
            if status and not _has_status(p, review, status):
                continue
            if min_count is not None and (p.count is None or p.count < min_count):
                continue
            if max_count is not None and (p.count is None or p.count > max_count):
                continue
            out.append(p)
        if sort.startswith("p_reject"):
            out.sort(key=lambda p: -1.0 if p.p_reject is None else p.p_reject,
                     reverse=sort.endswith("desc"))  # fmt: skip
        elif sort.startswith("count"):
            out.sort(key=lambda p: -1 if p.count is None else p.count,
                     reverse=sort.endswith("desc"))  # fmt: skip
        return out

    def progress(self, states: dict) -> dict:
        """ "312 of 1,204 reviewed, 41 changed" (computed again only after a change)."""
        cached = getattr(self, "_progress", None)
        if cached and cached[0] == self.store.generation:
            return cached[1]
        reviewed = changes = 0
        for p in self.run.pictures:
            review = states.get(p.key)
            if review and (review["decision"] or review["count"] is not None):
                reviewed += 1
                changes += changed(p, review)
        total = len(self.run)
        text = f"{reviewed:,} of {total:,} reviewed, {changes:,} changed"
        found = {"total": total, "reviewed": reviewed, "changed": changes, "text": text}
        self._progress = (self.store.generation, found)
        return found


def changed(picture, review: dict | None) -> bool:
    """A review that says other than the machine: another decision, other reasons for a
    rejection, or another count."""
    if not review:
        return False
    decision = review.get("decision")
    machine = picture.decision if picture.decision in ("keep", "reject") else None
    if machine is None and picture.decision in ("", "review"):
        # a count run: its verdicts decide; a row sent to review: what it leans to
        machine = "reject" if picture.reasons else "keep"
    if decision and decision != machine:
        return True
    if decision == "reject" and set((review.get("reasons") or "").split(";")) != set(
        picture.reasons
    ):
        return True
    count = review.get("count")
    return count is not None and count != picture.count


def _has_status(picture, review: dict | None, status: str) -> bool:
    reviewed = bool(review and (review["decision"] or review["count"] is not None))
    if status == "unreviewed":
        return not reviewed
    if status == "reviewed":
        return reviewed
    if status == "noted":
        return bool(review and review["note"])
    return changed(picture, review)


def make_app(review: Review, *, token: str | None = None):
    """The FastAPI app over ``review``. ``token``: asked of every request (a server on
    another address than this machine's); None: only requests to this machine are answered."""
    from fastapi import FastAPI, HTTPException, Request
    from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
    from jinja2 import Environment

    app = FastAPI(title="metasift review", docs_url=None, redoc_url=None, openapi_url=None)
    page = Environment(autoescape=True).from_string(PAGE)
    run, store, views = review.run, review.store, review.views

    @app.middleware("http")
    async def guard(request: Request, call_next):
        host = urlsplit(f"//{request.headers.get('host', '')}").hostname or ""
        if token is None and host not in LOOPBACK:
            return Response("this review server answers requests to 127.0.0.1 only", 403)
        if token is not None:
            given = request.cookies.get(COOKIE) or request.headers.get("x-review-token") or ""
            if request.url.path == "/" and request.query_params.get("token"):
                given = request.query_params["token"]
            if not secrets.compare_digest(given.encode(), token.encode()):
                return Response(
                    "this review server asks for the token printed when it started: "
                    "open the address it printed (…/?token=…)",
                    401,
                )
        if request.method not in ("GET", "HEAD"):
            refused = _refuse_post(request)
            if refused:
                return Response(refused, 403)
        response = await call_next(request)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"  # no page can frame it and steal keys
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["Cache-Control"] = response.headers.get("Cache-Control", "no-store")
        if request.url.path == "/" and token is not None:
            response.set_cookie(COOKIE, token, httponly=True, samesite="strict")
        return response

    @app.get("/", response_class=HTMLResponse)
    def index():
        html = page.render(
            title=f"metasift review: {run.results.name}",
            results=str(run.results),
            reviewer=review.reviewer,
            page_size=PAGE_SIZE,
            kinds=KINDS,
        )
        return HTMLResponse(
            html,
            headers={
                "Content-Security-Policy": "default-src 'self'; img-src 'self'; "
                "style-src 'unsafe-inline'; script-src 'unsafe-inline'; frame-ancestors 'none'"
            },
        )

    @app.get("/api/summary")
    def summary():
        states = store.all()
        facets = {"decision": {}, "reason": {}, "agreement": {}}
        for p in run.pictures:
            _bump(facets["decision"], p.decision)
            for r in p.reasons:
                _bump(facets["reason"], r)
            _bump(facets["agreement"], p.agreement)
        return {
            "results": str(run.results),
            "source": run.source,
            "reviewer": review.reviewer,
            "progress": review.progress(states),
            "facets": facets,
            "sorts": SORTS,
            "statuses": STATUSES,
        }

    @app.get("/api/pictures")
    def pictures(
        offset: int = 0,
        limit: int = PAGE_SIZE,
        decision: str = "",
        reason: str = "",
        agreement: str = "",
        status: str = "",
        min_count: int | None = None,
        max_count: int | None = None,
        sort: str = "order",
    ):
        if sort not in SORTS:
            raise HTTPException(400, f"sort must be one of {', '.join(SORTS)}")
        if status and status not in STATUSES:
            raise HTTPException(400, f"status must be one of {', '.join(STATUSES)}")
        if not (0 <= offset and 1 <= limit <= MAX_PAGE):
            raise HTTPException(400, f"offset >= 0 and limit between 1 and {MAX_PAGE}")
        states = store.all()
        chosen = review.select(
            states, decision=decision, reason=reason, agreement=agreement, status=status,
            min_count=min_count, max_count=max_count, sort=sort,
        )  # fmt: skip
        items = [review.item(p, states) for p in chosen[offset : offset + limit]]
        return {"total": len(chosen), "offset": offset, "items": items,
                "progress": review.progress(states)}  # fmt: skip

    @app.get("/api/pictures/{picture_id:int}")
    def picture(picture_id: int):
        p = _picture(picture_id)
        item = review.item(p, store.all())
        item["row"] = {k: p.row.get(k) for k in run.columns if k != "path"}
        item["path"] = str(p.row.get("path", ""))
        item["history"] = store.history(p.key)
        item["reviewed"] = store.get(p.key)
        return item

    @app.post("/api/pictures/{picture_id:int}")
    async def change(picture_id: int, request: Request):
        p = _picture(picture_id)
        body = await _json(request)
        who = str(body.pop("reviewer", "") or review.reviewer)
        if "decision" in body and (p.decision == "error" or run.state(p) != "ok"):
            raise HTTPException(409, _unusable(p))
        try:
            ids = store.set(p.key, body, who)
        except ValueError as err:
            raise HTTPException(400, str(err)) from None
        states = store.all()
        return {"item": review.item(p, states), "changes": ids,
                "progress": review.progress(states)}  # fmt: skip

    @app.post("/api/undo")
    async def undo(request: Request):
        body = await _json(request)
        try:
            number = int(body.get("change"))
        except (TypeError, ValueError):
            raise HTTPException(400, 'give the change to undo: {"change": N}') from None
        try:
            key, ids = store.undo(number, str(body.get("reviewer") or review.reviewer))
        except KeyError:
            raise HTTPException(404, f"no change {number}") from None
        except ReviewConflict as err:
            raise HTTPException(409, str(err)) from None
        states = store.all()
        found = run.by_key.get(key)
        return {"item": review.item(found, states) if found else None, "changes": ids,
                "progress": review.progress(states)}  # fmt: skip

    @app.post("/api/export")
    async def export(request: Request):
        await _json(request)
        if review.manifest is None:
            raise HTTPException(400, "no export file set for this server")
        manifest = export_manifest(run, store, review.manifest, confident=review.confident)
        done = {"manifest": str(manifest.path), "text": manifest.summary()}
        if review.reviewed_results is not None:
            results = export_results(run, store, review.reviewed_results)
            done.update(results=str(results.path), text=done["text"] + "; " + results.summary())
        return done

    @app.get("/pictures/{picture_id:int}/{kind}")
    def view(picture_id: int, kind: str):
        p = _picture(picture_id)
        if kind not in KINDS:
            raise HTTPException(404, f"no view {kind!r}")
        if run.state(p) != "ok":
            raise HTTPException(409, _unusable(p))
        try:
            file = views.path(p, kind)
        except NotAvailable as err:
            raise HTTPException(404, str(err)) from None
        media = "image/png" if file.suffix == ".png" else "image/jpeg"
        return FileResponse(
            file, media_type=media, headers={"Cache-Control": "private, max-age=60"}
        )

    @app.exception_handler(HTTPException)
    async def _error(request, err):
        return JSONResponse({"error": err.detail}, err.status_code)

    def _picture(picture_id: int):
        try:
            return run.get(picture_id)
        except KeyError:
            raise HTTPException(404, f"no picture {picture_id} in this run") from None

    def _unusable(p) -> str:
        state = run.state(p)
        if p.decision == "error" and state == "ok":
            return f"{p.name}: the run could not read this picture ({p.row.get('error')})"
        return {
            "missing": f"{p.name}: the picture is missing on disk",
            "changed": f"{p.name}: the picture has changed on disk since the run "
            "(size, time or SHA-256); classify it again",
            "outside": f"{p.name}: a link to a file outside the run's folders; not shown",
        }.get(state, f"{p.name}: {state}")

    return app


def _bump(counts: dict, key: str) -> None:
    if key:
        counts[key] = counts.get(key, 0) + 1


def _refuse_post(request) -> str:
    """Why a change request is refused (blank: allowed): it must come from this server's
    own page (same origin) and be JSON (so a form on another site cannot send it)."""
    expected = f"{request.url.scheme}://{request.headers.get('host', '')}"
    origin = request.headers.get("origin")
    if origin is None:
        referer = request.headers.get("referer")
        if referer:
            parts = urlsplit(referer)
            origin = f"{parts.scheme}://{parts.netloc}"
    if origin != expected:
        return f"changes are accepted from this server's own page only (origin {origin!r})"
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        return "changes are sent as application/json"
    return ""


async def _json(request) -> dict:
    from fastapi import HTTPException

    try:
        body = await request.json()
    except ValueError:
        raise HTTPException(400, "the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise HTTPException(400, "the body must be a JSON object")
    return body


def new_token() -> str:
    return secrets.token_urlsafe(24)
