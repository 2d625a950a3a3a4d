"""The decision rule of ``spectran advise``: measurements -> which method and preprocessing to use.

One function, :func:`decide`, of the numbers in :class:`~spectran.advise.measure.Measurements`;
the branches, in order, are the cases the measured tables separate (SASRec, d = 64, each
method at its default; the figures quoted in the reasons are those tables' test NDCG@10):

1. **too little data** to tell signal from noise (fewer than :data:`MIN_PAIRS` training pairs):
   not measured; the ID table is the baseline, no clear winner;
2. **anisotropic or unnormalised E** (the first centred component holds >= :data:`ANISOTROPIC_FIRST`
   of the energy and the mean cosine of random pairs is >= :data:`ANISOTROPIC_COSINE`, as raw
   decoder-LLM states; a high mean cosine alone is a common offset, which the tail plants have too;
   or the row norms vary by more than :data:`UNEVEN_NORMS` (cv), above every matrix measured; or
   the rows are far from unit norm, at least :data:`LARGE_NORM`, as raw or standardised LLM states):
   L2-normalise first (``text.normalize=true``) and read the rest on the normalised spectrum; MLP-type
   adapters are not offered (on raw Gemma 3 states llmesr collapsed while the SVD family did not;
   on L2-normalised ones all tied);
3. **few informative components** (fewer than half the top k reach the noise floor: ml-100k,
   18 of 381): item text did not beat the ID table; no clear winner;
4. **noise-like components on top** (at least :data:`NOISE_ON_TOP` of the top k by singular value
   are at noise level: the planted noise and the office tail plants): SpecTran's default, clearly;
5. **signal below weaker components** (``position_by=auto`` resolves to ``signal``): SpecTran's
   default; a clear winner only when the top k by singular value keep less than
   :data:`CLEAR_SIGMA_SHARE` of the best signal (office tail64 0.37, tail128 0.25), else level
   with ``svd_frozen`` (tail32 0.49, beauty tail64 0.56, the milder tail 0.63);
6. **clean**: the top k carry the signal (MiniLM and MPNet on office, beauty, toys): the SVD family
   ties, "no clear winner — pick by cost".

On a **sparse catalog** (fewer than :data:`~spectran.recipes.SPARSE_PER_ITEM` interactions per
item) the verdict says that a SpecTran choice trains with its recipe's sparse-catalog variant
(svd_frozen's regularisation, which ``train`` applies by itself there): the recipe, tuned on
office, overfits such a catalog.

The thresholds sit between the measured cases named with them; a new table that lands between
them moves a threshold or adds a branch here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from spectran.advise.measure import Measurements, Scale, Spectrum
from spectran.encoders.registry import method_spec
from spectran.recipes import SPARSE_PER_ITEM, sparse_catalog

MIN_PAIRS = 1000  # training pairs below which rho cannot be told from noise reliably (not measured)
ANISOTROPIC_FIRST = 0.2  # MiniLM 0.11 (office), the plants <= 0.11; raw Gemma 3 270M states 0.25
ANISOTROPIC_COSINE = 0.5  # MiniLM 0.23 (office); raw Gemma 3 270M states 0.80 (the tail plants 0.45-0.75)
FEW_INFORMATIVE = 0.5  # fewer than this share of the top k reach the noise floor (ml-100k: 18 of 64)
NOISE_ON_TOP = 1 / 8  # of the top k noise-like: tail64 9/64, noise64 64/64 (clear); the milder tail 6/64, MPNet 1/64
CLEAR_SIGMA_SHARE = 0.45  # signal share of the top k by sigma below which svd_frozen clearly loses
UNEVEN_NORMS = 0.25  # row-norm cv above which E counts as unnormalised (MiniLM 0.00, the plants <= 0.09)
LARGE_NORM = 10.0  # mean row norm from which E counts as unnormalised (MiniLM, MPNet 1; llmesr collapsed on
# office's Gemma 3 states both raw, norm 73, and standardised, norm 25; beauty's raw Gemma states: 72)
MEASURED_DIM = 64  # the d of every table behind this rule

NO_CLEAR_WINNER = "no clear winner — pick by cost"


@dataclass
class Choice:
    method: str
    settings: list[str]  # --set assignments on top of the method's defaults
    reason: str  # one sentence

    def label(self) -> str:
        return " ".join([self.method, *(f"--set {s}" for s in self.settings)])


@dataclass
class Verdict:
    case: str  # too_small | few_informative | noise_on_top | signal_below | clean
    clear: bool  # False: the tables show no clear winner, pick by cost
    use: Choice
    runner_up: Choice
    preprocessing: list[str]  # --set assignments for E (e.g. text.normalize=true); [] = none
    notes: list[str] = field(default_factory=list)

    @property
    def headline(self) -> str:
        return f"use {self.use.method}" if self.clear else NO_CLEAR_WINNER


def anisotropic(s: Spectrum) -> bool:
    return s.first_share >= ANISOTROPIC_FIRST and s.mean_cosine >= ANISOTROPIC_COSINE


def uneven(sc: Scale) -> bool:
    """Rows of very different norms (unnormalised hidden states), with no zero row to normalise."""
    return sc.row_norm_cv > UNEVEN_NORMS and sc.zero_rows == 0


def large(sc: Scale) -> bool:
    """Rows far from unit norm (raw or standardised LLM states), with no zero row to normalise."""
    return sc.row_norm_mean >= LARGE_NORM and sc.zero_rows == 0


def decide(m: Measurements) -> Verdict:
    """The verdict the measured tables support for these measurements (see the module docstring)."""
    notes = _notes(m)
    if m.data.pairs < MIN_PAIRS or m.raw.noise_floor is None:
        return Verdict("too_small", False, Choice("id", [], (
            f"{m.data.pairs} training pairs are too few to tell a component's collaborative signal from noise, "
            "and no table was measured this small; the ID table is the baseline every method is compared with")),
            Choice("svd_frozen", [], "the cheapest text method, if the item texts are meant to help"), [], notes)
    prep: list[str] = []
    s = m.raw
    why = _why_normalise(m)
    if why and m.normalised is not None:
        prep, s = ["text.normalize=true"], m.normalised
        notes.append(f"{why}: trained on raw decoder-LLM states (mean cosine 0.80, first centred component 25 %), "
                     "llmesr collapsed while the SVD family (svd_frozen, spectran) did not; L2-normalised, all "
                     "tied. The rest of the verdict reads the normalised spectrum")
    case = _spectral_case(s)
    verdict = _CASES[case](s, prep, notes)
    if prep and verdict.runner_up.method in MLP_TYPE:
        verdict.runner_up = Choice("spectran", [], "after L2 normalisation the SVD family ties; on raw anisotropic "
                                   "states it is the MLP-type adapters that fail")
    if sparse_catalog(m.data.interactions, m.data.items):
        verdict.notes.append(_sparse_note(m))
    return verdict


def _sparse_note(m: Measurements) -> str:
    """What a sparse catalog changes in a SpecTran choice (its recipe's sparse-catalog variant)."""
    per_item = m.data.interactions / max(1, m.data.items)
    variant = " ".join(f"{k}={v}" for k, v in method_spec("spectran").sparse_recipes["sasrec"].items())
    return (f"a sparse catalog ({per_item:.1f} interactions per item, fewer than {SPARSE_PER_ITEM:g}): SpecTran "
            f"trains with its recipe's sparse-catalog variant here ({variant}, svd_frozen's regularisation): the "
            "recipe, tuned on office (22 per item), overfit clothing's 8,900-user sample (3.2 per item, 3 seeds: "
            "0.0151 against svd_frozen's 0.0164), the variant reached 0.0167")


def _why_normalise(m: Measurements) -> str:
    """Why E should be L2-normalised before training, or "" (see the module docstring, case 2)."""
    if anisotropic(m.raw):
        return (f"E is anisotropic (mean cosine {m.raw.mean_cosine:.2f}, first centred component "
                f"{m.raw.first_share:.0%} of the energy)")
    if uneven(m.scale):
        return f"E's rows differ in norm (cv {m.scale.row_norm_cv:.2f}, mean {m.scale.row_norm_mean:.3g})"
    if large(m.scale):
        return (f"E's rows have norm {m.scale.row_norm_mean:.3g} (sentence encoders give unit norm; "
                "llmesr's authors fed unit-norm embeddings)")
    return ""


def _spectral_case(s: Spectrum) -> str:
    assert s.noise_like is not None and s.above_floor is not None and s.share is not None
    if s.above_floor < FEW_INFORMATIVE * s.k:
        return "few_informative"
    if s.noise_like >= max(1, math.ceil(NOISE_ON_TOP * s.k)):
        return "noise_on_top"
    if s.auto == "signal":
        return "signal_below"
    return "clean"


MLP_TYPE = ("llmesr", "mlp", "moe", "rlmrec", "whiten_mlp")


def _few_informative(s: Spectrum, prep: list[str], notes: list[str]) -> Verdict:
    return Verdict("few_informative", False, Choice("id", [], (
        f"only {s.above_floor} of {s.rank} components reach the noise floor: where this was measured (ml-100k, "
        "18 of 381) no text method beat the ID table on validation")),
        Choice("spectran", ["method.attend=informative"], (
            "if the texts are to be used: its selection kept the ID-table level where svd_frozen fell below it "
            "(ml-100k: 0.0550, or 0.0573 with method.attention=none, against id's 0.0525 and svd_frozen's 0.0481; "
            "neither significantly above id)")), prep, notes)


def _by_signal(case: str, why: str, prep: list[str], notes: list[str]) -> Verdict:
    """SpecTran's default placing its table by signal, clearly ahead (the office tail plants)."""
    return Verdict(case, True, Choice("spectran", [], (
        f"{why}: the default places its table by signal (office tail64 95.7 %, tail128 98.3 %, both plants at "
        "once 97.4 % of the clean figure, where svd_frozen got 90 %, 52 % and 6 %)")),
        Choice("spectran", ["method.position_by=informative"], (
            "skips the noise-like components but keeps the singular-value order (92.5 %, 94.9 % and 93.5 % on the "
            "same plants)")), prep, notes)


def _noise_on_top(s: Spectrum, prep: list[str], notes: list[str]) -> Verdict:
    top = f"{s.noise_like} of the top {s.k} components by singular value are at noise level"
    if s.auto == "signal":  # and the informative ones sit below weaker ones
        return _by_signal("noise_on_top", f"{top} and the signal sits lower (share {s.share:.2f})", prep, notes)
    return Verdict("noise_on_top", True, Choice("spectran", [], (
        f"{top}: svd_frozen puts its frozen table on them and falls to the ID level or collapses (office noise64: "
        "0.0434, 0.0026 at its recipe) while the default skips them (0.0564, 98.8 % of the clean figure)")),
        Choice("spectran", ["method.position_by=signal"], "places the table by signal instead (office noise64: "
               "0.0553)"), prep, notes)


def _signal_below(s: Spectrum, prep: list[str], notes: list[str]) -> Verdict:
    assert s.sigma_share is not None
    if s.sigma_share < CLEAR_SIGMA_SHARE:
        return _by_signal("signal_below", f"the top {s.k} components by singular value carry "
                          f"{s.sigma_share:.0%} of the best signal", prep, notes)
    return Verdict("signal_below", False, Choice("spectran", [], (
        f"the singular-value order is partly off (share {s.share:.2f} < 0.8), so the default orders by signal; it "
        "was level with or above svd_frozen on every such matrix measured (office's milder tail 0.0586 against "
        "0.0579, beauty tail64 0.0471 against 0.0457)")),
        Choice("svd_frozen", [], (
            f"cheaper, and the top {s.k} still carry {s.sigma_share:.0%} of the best signal: it kept 95–99 % of "
            "its clean figure on such matrices")), prep, notes)


def _clean(s: Spectrum, prep: list[str], notes: list[str]) -> Verdict:
    return Verdict("clean", False, Choice("svd_frozen", [], (
        f"{s.noise_like} of the top {s.k} components are noise-like and they carry the signal (share {s.share:.2f}): "
        "the SVD family ties here (office 0.0584 against spectran's 0.0579, ten seeds; beauty 0.0479 against "
        "0.0474) and svd_frozen is the cheapest")),
        Choice("llmesr", [], "first on office in every regime measured (0.0598 against 0.0571 at the shared "
               "defaults), level on beauty (0.0454), at about twice the epoch cost"), prep, notes)


_CASES = {"few_informative": _few_informative, "noise_on_top": _noise_on_top, "signal_below": _signal_below,
          "clean": _clean}


def _notes(m: Measurements) -> list[str]:
    notes = []
    if m.d != MEASURED_DIM:
        notes.append(f"the tables behind this rule were measured at d = {MEASURED_DIM}; here d = {m.d}")
    if m.raw.rank < m.d:
        notes.append(f"E's centred rank is {m.raw.rank} < d = {m.d}: the SVD family zero-pads its table to d")
    sc = m.scale
    if not anisotropic(m.raw) and not uneven(sc) and not large(sc) and (sc.zero_rows or sc.dominant_share > 0.5):
        dims = f", hidden dimensions {sc.dominant_dims} hold {sc.dominant_share:.0%} of the energy" \
            if sc.dominant_dims else ""
        notes.append(f"rows differ in scale (norm cv {sc.row_norm_cv:.2f}, {sc.zero_rows} zero rows{dims}): MLP-type "
                     "adapters see that scale, the SVD family centres and rescales; text.normalize=true removes it")
    if sc.constant_columns:
        notes.append(f"{sc.constant_columns} hidden dimension(s) of E are constant "
                     "(no information; the SVD drops them)")
    return notes
