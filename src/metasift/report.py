"""A self-contained HTML page to review a run: a table of every picture (decision, reasons,
p_reject, the count and its reason, whether the CNN and the count agree, links to each
overlay and heat map) that sorts by any column and filters to the disagreements, and
thumbnails grouped by decision and reason that open the full picture. Opens in any browser,
offline; the links are relative to the page, so the page travels with the pictures."""

from __future__ import annotations

import base64
import html
import io as _io
import os
from pathlib import Path
from urllib.parse import quote

import numpy as np

from .atomic import write_text
from .io import ImageReadError, read_image


def _thumb(path, width: int = 220) -> str:
    from PIL import Image

    try:
        image, _ = read_image(path)
    except ImageReadError:
        return ""
    h, w = image.shape
    im = Image.fromarray((image * 255).astype(np.uint8)).resize(
        (width, max(1, round(h * width / w))), Image.BILINEAR
    )
    buf = _io.BytesIO()
    im.save(buf, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


def _embed(path) -> str:
    if not path or not Path(path).is_file():
        return ""
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode()


def _href(path, page: Path) -> str:
    """A link to ``path`` from the page: relative where it can be, else a file URL."""
    path = Path(os.path.abspath(path))
    try:
        text = os.path.relpath(path, os.path.abspath(page.parent))
    except ValueError:  # another drive (Windows)
        return path.as_uri()
    return html.escape(quote("/".join(Path(text).parts), errors="surrogateescape"), quote=True)


def _link(path, page: Path, label: str) -> str:
    if not path or not Path(path).is_file():
        return ""
    return f"<a href='{_href(path, page)}'>{label}</a>"


def write_report(
    rows: list[dict],
    target: Path,
    *,
    title: str,
    summary: str,
    explanations=None,
    overlays: Path | None = None,
) -> None:
    """Write the page. ``explanations`` maps a picture's path to its heat map; ``overlays``
    is the folder of the count's overlays (named by `metasift.pipeline.overlay_name`)."""
    from .pipeline import overlay_name

    target = Path(target)
    explanations = explanations or {}

    def overlay_of(row):
        return Path(overlays) / overlay_name(row["path"]) if overlays else None

    groups: dict[str, list[dict]] = {}
    for row in rows:
        key = row["decision"]
        if key == "reject" and row.get("reasons"):
            key = f"reject: {row['reasons'].split(';')[0]}"
        groups.setdefault(key, []).append(row)
    disagree = sum(str(r.get("agreement", "")).startswith(("disagree", "both")) for r in rows)
    parts = [f"<h1>{html.escape(title)}</h1><p>{html.escape(summary)}</p>"]
    parts.append(
        "<h2>All pictures</h2><p>Click a column title to sort. "
        f"<label><input type='checkbox' id='only'> only where the CNN and the count disagree "
        f"({disagree})</label></p><table id='t'><thead><tr>"
        "<th>picture</th><th>decision</th><th>reasons</th><th>p_reject</th><th>count</th>"
        "<th>count's reason</th><th>agreement</th><th>overlay</th><th>heat map</th>"
        "</tr></thead><tbody>"
    )
    for row in rows:
        agreement = str(row.get("agreement", ""))
        differs = agreement.startswith(("disagree", "both"))
        why = row.get("error") or row.get("count_reason", "")  # an error row says why instead
        cells = [
            f"<a href='{_href(row['path'], target)}'>{html.escape(row['path'])}</a>",
            *(html.escape(str(row.get(k, ""))) for k in ("decision", "reasons", "p_reject")),
            html.escape(str(row.get("chromosome_count", ""))),
            html.escape(str(why)),
            html.escape(agreement),
            _link(overlay_of(row), target, "overlay"),
            _link(explanations.get(row["path"]), target, "heat map"),
        ]
        parts.append(
            f"<tr class='{'differs' if differs else ''}'>"
            + "".join(f"<td>{c}</td>" for c in cells)
            + "</tr>"
        )
    parts.append("</tbody></table>")
    for key in sorted(groups, key=lambda k: (k != "keep", k)):
        items = sorted(groups[key], key=lambda r: -float(r["p_reject"] or 0))
        parts.append(f"<h2>{html.escape(key)} ({len(items)})</h2><div class='grid'>")
        for row in items:
            src = _embed(explanations.get(row["path"])) or _thumb(row["path"])
            img = (
                f"<a href='{_href(row['path'], target)}'><img src='{src}' loading='lazy'></a>"
                if src
                else "<div class='missing'>no preview</div>"
            )
            caption = html.escape(os.path.basename(row["path"]))
            detail = (
                f"p_reject {row['p_reject']}"
                if row["p_reject"] != ""
                else html.escape(row.get("error", ""))
            )
            if row.get("chromosome_count", "") != "":
                detail += f", {row['chromosome_count']} chromosomes"
            parts.append(f"<figure>{img}<figcaption>{caption}<br>{detail}</figcaption></figure>")
        parts.append("</div>")
    page = f"""<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:1em 2em}} table{{border-collapse:collapse;font-size:13px}}
td,th{{border:1px solid #ccc;padding:2px 6px}} th{{cursor:pointer;background:#eee}}
tr.differs td{{background:#fff3e0}} .hide{{display:none}}
.grid{{display:flex;flex-wrap:wrap;gap:8px}} figure{{margin:0;width:224px;font-size:12px}}
img{{width:220px;border:1px solid #999}} .missing{{width:220px;height:160px;background:#fdd}}</style>
<script>
document.addEventListener('DOMContentLoaded',()=>{{const t=document.getElementById('t');
t.querySelectorAll('th').forEach((th,i)=>th.onclick=()=>{{const b=t.tBodies[0];
const rows=[...b.rows];const up=th.dataset.up!=='1';th.dataset.up=up?'1':'0';
rows.sort((x,y)=>{{const a=x.cells[i].textContent,c=y.cells[i].textContent;
const na=parseFloat(a),nc=parseFloat(c);const r=(!isNaN(na)&&!isNaN(nc))?na-nc:a.localeCompare(c);
return up?r:-r}});rows.forEach(r=>b.appendChild(r))}});
document.getElementById('only').onchange=e=>{{for(const r of t.tBodies[0].rows)
r.classList.toggle('hide',e.target.checked&&!r.classList.contains('differs'))}}}});
</script></head><body>{"".join(parts)}</body></html>"""
    # names not in UTF-8 are shown escaped
    write_text(target, page.encode("utf-8", "backslashreplace").decode("utf-8"))
