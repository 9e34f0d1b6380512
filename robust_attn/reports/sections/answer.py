"""Page 1: the answer. The run's incompleteness first, what was studied in one line, three to five
sentences (claims, headline, checks) and one figure: the claims' forest plot beside the headline curve."""

from __future__ import annotations

from robust_attn.reports import figures
from robust_attn.reports.blocks import Block, Heading, PageBreak, Paragraph, Plot
from robust_attn.reports.context import Context
from robust_attn.reports.tables import ALL_ATTACKS
from robust_attn.reports.verdicts import FRAGILE_NOTE, checks_sentence, claim_sentences, headline_sentence, threat_sentences

TITLE = "Summary"


def study_line(ctx: Context) -> str:
    run = ctx.run
    ds = run.manifest.get("dataset", {})
    archs = len(ctx.members)
    plural = "architecture" if archs == 1 else "architectures"
    pop = (
        f"{len(run.models)} models = {archs} {plural} x {ctx.seeds} training seeds"
        if ctx.seeds >= 2
        else (f"{len(run.models)} model(s) of {archs} {plural}, one training run each")
    )
    attacks = [a for a in run.attacks if any(k[1] == a for k in run.cells)]
    modes = ", ".join(run.manifest.get("spec", {}).get("modes", []))
    others = [t for t in dict.fromkeys(run.results["threat_model"].dropna()) if t != "white-box"] if "threat_model" in run.results else []
    line = f"{ds.get('name')} {ds.get('split')} split, {len(run.labels):,} images; {pop}; white-box attacks: {', '.join(attacks) or 'none'}"
    return line + (f" ({modes})" if attacks else "") + (f"; other threat models: {', '.join(others)}" if others else "") + "."


def answer_section(ctx: Context) -> list[Block]:
    from robust_attn.reports.pdf import HEIGHT, height_of

    run = ctx.run
    blocks: list[Block] = [Heading(ctx.title, 1)]
    if run.missing:
        blocks.append(Paragraph(run.missing_summary(), lead="Incomplete run: ", style="alert"))
    blocks += [Heading(TITLE), Paragraph(study_line(ctx), style="note")]
    sentences = claim_sentences(ctx.claims, ctx.seeds)
    headline = headline_sentence(ctx.headline)
    sentences += [headline] if headline else []
    sentences += threat_sentences(run, ctx.seeds)
    sentences.append(checks_sentence(ctx.checks))
    blocks += [Paragraph(text, lead=lead, style="bullet") for lead, text in sentences]
    claims, curve = ctx.claims, ctx.headline
    if len(claims) or len(curve):
        what = "the pointwise worst of all L-inf attacks" if ctx.focus == ALL_ATTACKS else str(ctx.focus)
        caption = (
            (
                f"The paper's claims and the headline curve. Left: the claims, each architecture's difference from its baseline "
                f"with its 95% interval (zero line: no difference); verdict at the right, hollow and dashed where fragile "
                f"({FRAGILE_NOTE})." + (f" Right: the headline curve, {what}." if len(curve) else "")
            )
            if len(claims)
            else (f"The headline curve: {what}, with 95% bands.")
        )
        used = height_of(blocks) + 0.35  # the caption line below the figure in the Markdown and HTML is not on the page
        height = max(HEIGHT - used - 0.05, 3.0)  # the rest of page 1: the answer stays on one page
        blocks.append(Plot("summary", caption, lambda c: figures.summary_figure(c, claims, curve, _colours(ctx), _markers(ctx)), height))
    blocks.append(PageBreak())
    return blocks


def _colours(ctx: Context) -> dict[str, figures.Colour]:
    return ctx.arch_colours if ctx.headline["level"].eq("architecture").any() else ctx.colours


def _markers(ctx: Context) -> dict[str, str]:
    return {} if ctx.headline["level"].eq("architecture").any() else ctx.markers
