"""A compact English stop-word list for cluster labels (function words and web noise)."""

from __future__ import annotations

__all__ = ["ENGLISH_STOP_WORDS"]

ENGLISH_STOP_WORDS = frozenset(
    """
    a about above across after afterwards again against all almost alone along already also
    although always am among amongst an and another any anyhow anyone anything anyway anywhere
    are around as at be became because become becomes been before behind being below beside
    besides between beyond both but by can cannot could did do does doing done down during each
    either else elsewhere enough etc even ever every everyone everything everywhere except few
    for from further had has have having he her here hers herself him himself his how however
    if in into is it its itself just least less ll many may me might mine more moreover most
    mostly much must my myself neither never nevertheless next no nobody none nor not nothing now
    nowhere of off often on once one only onto or other others otherwise our ours ourselves out
    over own per perhaps please quite rather re same several she should since so some somehow
    someone something sometime sometimes somewhere still such than that the their theirs them
    themselves then there thereafter thereby therefore therein these they this those though
    through throughout thru thus to together too toward towards under until up upon us very via
    ve was we well were what whatever when whence whenever where whereas wherever whether which
    while who whoever whole whom whose why will with within without would yet you your yours
    yourself yourselves http https www com html jpg jpeg png img image photo picture file
    """.split()
)
