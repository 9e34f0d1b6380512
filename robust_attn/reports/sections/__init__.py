"""The report's sections, each a function ``(Context) -> list[Block]`` that returns nothing when the
run holds none of its data. The order they appear in is ``robust_attn.reports.build.SECTION_WRITERS``."""
