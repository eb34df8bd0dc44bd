"""Stop words for cluster labels: function words, web and camera-file noise.

Catalog titles are often camera file names (``DSC_0067``, ``IMG_8394``, ``P1050200``) and come
in many languages, so besides English function words (and the ordinal suffixes of ``19th``)
the list holds the file-name prefixes of common cameras, the words that name a caption field
(``title``, ``titel``) and the commonest function words of the other languages frequent in
Creative Commons catalogs (Dutch, German, French, Spanish, Portuguese, Italian). Only caption
words are filtered; tags are kept as written. Fragments of codes (``RP-F-F00999-AC``) are
left out by the tokeniser (:mod:`ccgraph.cluster._tokens`).
"""

from __future__ import annotations

__all__ = ["CAMERA_FILE_WORDS", "ENGLISH_STOP_WORDS", "OTHER_STOP_WORDS", "STOP_WORDS"]

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
    title untitled th nd rd
    """.split()
)

#: File-name prefixes written by cameras and phones (DSC_0067, DSCN5842, IMGP1234, MVI_0001).
CAMERA_FILE_WORDS = frozenset(
    """
    dsc dscf dscn dsci dcim imgp mvi cimg pict gopr sdc hpim jpe tif tiff gif webp heic
    """.split()
)

#: Function words of Dutch, German, French, Spanish, Portuguese and Italian (articles,
#: prepositions, conjunctions, pronouns) and their words for "title" (museum captions such as
#: ``(titel op object)`` label the field, not the picture); words that are also common
#: English content words (``pour``, ``par``, ``gift``) are left out.
OTHER_STOP_WORDS = frozenset(
    """
    de het een van op met bij uit voor naar aan en ook als dat deze dit wordt werd zijn
    der die das dem den des ein eine einer eines einem und mit von zu zum zur im am auf aus
    bei nach vor gegen ist sind wird oder auch wie
    le la les des du un une et au aux sur avec dans qui que est sont ou ces cette
    el los las del al con por para una unos unas es en lo se
    da do dos das em na nos nas um uma ao com pelo pela
    il di della delle degli dei dello nel nella che per gli
    titel titre titolo titulo título
    """.split()
)

#: Everything :func:`ccgraph.cluster._tokens.token_codes` leaves out.
STOP_WORDS = ENGLISH_STOP_WORDS | CAMERA_FILE_WORDS | OTHER_STOP_WORDS
