"""A self-contained HTML page to review a run: thumbnails grouped by decision and reason,
a table sortable by p_reject, and the explanation images. Opens in any browser, offline."""

from __future__ import annotations

import base64
import html
import io as _io
import os
from pathlib import Path

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


def write_report(
    rows: list[dict], target: Path, *, title: str, summary: str, explanations=None
) -> None:
    explanations = explanations or {}
    groups: dict[str, list[dict]] = {}
    for row in rows:
        key = (
            row["decision"]
            if row["decision"] != "reject"
            else f"reject: {(row.get('reasons') or 'unspecified').split(';')[0]}"
        )
        groups.setdefault(key, []).append(row)
    parts = [f"<h1>{html.escape(title)}</h1><p>{html.escape(summary)}</p>"]
    parts.append(
        "<h2>All pictures</h2><p>Click a column title to sort.</p><table id='t'><thead><tr>"
        "<th>picture</th><th>decision</th><th>reasons</th><th>p_reject</th><th>count</th>"
        "<th>count's reason</th><th>agreement</th></tr></thead><tbody>"
    )
    for row in rows:
        cells = [row.get(k, "") for k in ("path", "decision", "reasons", "p_reject")]
        count = row.get("chromosome_count", "")
        why = row.get("error") or row.get("count_reason", "")  # an error row says why instead
        cells += [count, why, row.get("agreement", "")]
        parts.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>")
    parts.append("</tbody></table>")
    for key in sorted(groups, key=lambda k: (k != "keep", k)):
        items = sorted(groups[key], key=lambda r: -float(r["p_reject"] or 0))
        parts.append(f"<h2>{html.escape(key)} ({len(items)})</h2><div class='grid'>")
        for row in items:
            src = _embed(explanations.get(row["path"])) or _thumb(row["path"])
            img = (
                f"<img src='{src}' loading='lazy'>"
                if src
                else "<div class='missing'>no preview</div>"
            )
            caption = html.escape(os.path.basename(row["path"]))
            detail = (
                f"p_reject {row['p_reject']}"
                if row["p_reject"] != ""
                else html.escape(row.get("error", ""))
            )
            parts.append(f"<figure>{img}<figcaption>{caption}<br>{detail}</figcaption></figure>")
        parts.append("</div>")
    page = f"""<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:1em 2em}} table{{border-collapse:collapse;font-size:13px}}
td,th{{border:1px solid #ccc;padding:2px 6px}} th{{cursor:pointer;background:#eee}}
.grid{{display:flex;flex-wrap:wrap;gap:8px}} figure{{margin:0;width:224px;font-size:12px}}
img{{width:220px;border:1px solid #999}} .missing{{width:220px;height:160px;background:#fdd}}</style>
<script>
document.addEventListener('DOMContentLoaded',()=>{{const t=document.getElementById('t');
t.querySelectorAll('th').forEach((th,i)=>th.onclick=()=>{{const b=t.tBodies[0];
const rows=[...b.rows];const up=th.dataset.up!=='1';th.dataset.up=up?'1':'0';
rows.sort((x,y)=>{{const a=x.cells[i].textContent,c=y.cells[i].textContent;
const na=parseFloat(a),nc=parseFloat(c);const r=(!isNaN(na)&&!isNaN(nc))?na-nc:a.localeCompare(c);
return up?r:-r}});rows.forEach(r=>b.appendChild(r))}})}});
</script></head><body>{"".join(parts)}</body></html>"""
    # names not in UTF-8 are shown escaped
    write_text(target, page.encode("utf-8", "backslashreplace").decode("utf-8"))
