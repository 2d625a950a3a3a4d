"""The datasets ``spectran data fetch`` knows: pinned source files, their SHA-256 and licences.

Every source file is an immutable per-commit raw-file URL of a public GitHub repository
(``https://raw.githubusercontent.com/<owner>/<repo>/<commit>/<path>``), so its content cannot
change under a recorded checksum. A checksum of ``None`` means it is not known yet: fetch then
refuses the set unless told to trust the first download (see docs/data.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from spectran.errors import ConfigError

RAW_HOST = "https://raw.githubusercontent.com"

S3REC = ("RUCAIBox/CIKM2020-S3Rec", "2a81540ae18615d88ef88227b0c066e5b74781e5")
IDGENREC = ("agiresearch/IDGenRec", "a297185aa5b6cd6de9dcf8b8182052ee8e0b3261")
DHR = ("dh-r/LLM-Sequential-Recommendation", "6464b39064f369b251580c63edbf635de0934101")
RDREC = ("WangXFng/RDRec", "4055c3028d3afbd57a0fffd54076825836b7cad7")
LRD = ("ysh-1998/LRD", "ccbd8299c71bb0d26488d67b622706caf9139e21")
MSL = ("czt6666/MSL", "b8451d8dfc9c6c194aaf11ccfeedaba8d8d0ee90")
DUOREC = ("RuihongQiu/DuoRec", "4ebc30d8b7d9465f854867887b127a0bbc38bc31")
LETTER = ("HonghuiBao2000/LETTER", "ce037d2c2986d144554e04a70ad5c9a1959eb44f")
P5_IDS = ("Wenyueh/LLM-RecSys-ID", "77eaca3446b08a2c8cc44d165c791488e04c0d18")

AMAZON_2014 = ("Underlying data: the Amazon review dataset, 2014 (He & McAuley, WWW 2016; McAuley et al., "
               "SIGIR 2015), released for research use.")


@dataclass(frozen=True)
class SourceFile:
    """One file of a public repository at a fixed commit, stored locally as ``name``."""

    name: str
    repo: str  # owner/name
    commit: str
    path: str  # path inside the repository
    sha256: str | None
    size: int | None  # bytes, where known

    @property
    def mirror_path(self) -> str:
        """The URL without scheme and host: ``<owner>/<repo>/<commit>/<path>``."""
        return f"{self.repo}/{self.commit}/{self.path}"

    @property
    def url(self) -> str:
        return f"{RAW_HOST}/{self.mirror_path}"

    def url_from(self, mirror: str | None) -> str:
        return f"{mirror.rstrip('/')}/{self.mirror_path}" if mirror else self.url


@dataclass(frozen=True)
class DatasetEntry:
    """A dataset fetch can build: its source files, what it is, its licence and expected counts."""

    name: str
    title: str
    files: tuple[SourceFile, ...]
    licence: str
    description: str
    users: int | None = None
    items: int | None = None
    interactions: int | None = None

    @property
    def verified(self) -> bool:
        return all(f.sha256 is not None for f in self.files)

    @property
    def download_bytes(self) -> int | None:
        sizes = [f.size for f in self.files]
        return None if None in sizes else sum(s for s in sizes if s is not None)

    def file(self, name: str) -> SourceFile:
        return next(f for f in self.files if f.name == name)


def _f(name: str, source: tuple[str, str], path: str, sha256: str | None, size: int | None) -> SourceFile:
    return SourceFile(name, source[0], source[1], path, sha256, size)


CATALOG: dict[str, DatasetEntry] = {e.name: e for e in [
    DatasetEntry(
        "beauty", "Amazon Beauty (2014, 5-core), S3Rec/P5 ids, full item titles",
        (_f("Beauty.txt", S3REC, "data/Beauty.txt",
            "226cce9c3105299ca0db9615d7d3fb32b3175e90da43100ae352599f0f0107b8", 1090094),
         _f("user_sequence.txt", IDGENREC, "rec_datasets/Beauty/user_sequence.txt",
            "47197cbee7bdc1896926e10d96b807dce0aecb9a1f0c2ccc887c21090237c9b7", 2513357),
         _f("item_generative_indexing_phase_0.txt", IDGENREC,
            "rec_datasets/Beauty/item_generative_indexing_phase_0.txt",
            "1a90f934fe506747f094b181f791ece593e2f86bb15e5420d910e6de4882b456", 573272),
         _f("products_lookup.csv", DHR, "beauty/products_lookup.csv",
            "65133eca0615999df67fc5b26a93a7da762e53e613a083fd6b9e37174896d128", 961053),
         _f("item_id_to_int.json", DHR, "beauty/item_id_to_int.json",
            "3d1a1d362c7daeddf616057fae8fa24af9d70902fdaf4631852231a9953afa50", 243011)),
        "S3Rec and IDGenRec: none stated; dh-r/LLM-Sequential-Recommendation: BSD-3-Clause (code repo). "
        + AMAZON_2014,
        "Sequences and ids of S3Rec data/Beauty.txt (identical to the P5 copies); ASINs by aligning IDGenRec's "
        "user_sequence.txt line by line; titles from dh-r's products lookup, IDGenRec keywords where a title "
        "is empty.", 22363, 12101, 198502),
    DatasetEntry(
        "toys", "Amazon Toys and Games (2014, 5-core), P5 ids, keyword item text",
        (_f("sequential.txt", RDREC, "data/toys/sequential.txt",
            "fa1cff57550387966440a93219753b97df62269455b3497612cdca3e8db0ceee", 921692),
         _f("datamaps.json", RDREC, "data/toys/datamaps.json",
            "a67fd09b5bbca12aea613015d9d1ed99610bb35015d3bbe8cd9e7a3eeda2c90c", 1021832),
         _f("item_generative_indexing_phase_0.txt", IDGENREC, "rec_datasets/Toys/item_generative_indexing_phase_0.txt",
            "bce5c0028efdb6ec87033021087c9251eb64d6dfc77d791c47837c830b9d7f19", 566953),
         _f("Toys_and_Games.txt", S3REC, "data/Toys_and_Games.txt",
            "176c680c688d497598c4a89a03b402c0fe78d795e5db335c2e78dd5f2d778a3f", 922166)),
        "none stated by the source repositories. " + AMAZON_2014,
        "P5 sequences (RDRec's copy of sequential.txt); item text is IDGenRec's title/category keywords "
        "(no full titles); S3Rec Toys_and_Games.txt is read only to check it holds the same data.",
        19412, 11924, 167597),
    DatasetEntry(
        "sports", "Amazon Sports and Outdoors (2014, 5-core), S3Rec/P5 ids, keyword item text",
        (_f("Sports_and_Outdoors.txt", S3REC, "data/Sports_and_Outdoors.txt", None, None),
         _f("datamaps.json", RDREC, "data/sports/datamaps.json", None, None),
         _f("item_generative_indexing_phase_0.txt", IDGENREC,
            "rec_datasets/Sports/item_generative_indexing_phase_0.txt", None, None)),
        "none stated by the source repositories. " + AMAZON_2014,
        "S3Rec data/Sports_and_Outdoors.txt with P5 datamaps for the ASINs and IDGenRec keywords as text. "
        "Checksums unknown: this set was never staged where the package was built."),
    DatasetEntry(
        "yelp", "Yelp (S3Rec/P5 ids), business name and categories",
        (_f("Yelp.txt", S3REC, "data/Yelp.txt", None, None),
         _f("datamaps.json", P5_IDS, "data/yelp/datamaps.json", None, None),
         _f("Yelp.item.json", LETTER, "data/Yelp/Yelp.item.json", None, None),
         _f("item_generative_indexing_phase_0.txt", IDGENREC,
            "rec_datasets/Yelp/item_generative_indexing_phase_0.txt", None, None)),
        "none stated by the source repositories; the Yelp Open Dataset terms (academic use).",
        "S3Rec data/Yelp.txt with P5 datamaps; text = LETTER's title and categories (LETTER item k is "
        "P5 item k+1). Checksums unknown: this set was never staged where the package was built."),
    DatasetEntry(
        "office", "Amazon Office Products (2014, 5-core), ReChorus split, title + category + brand",
        tuple(_f(n, LRD, f"data/Office/{n}", h, s) for n, h, s in [
            ("train.csv", "015236e98589dac0801be8fe16519d95735b2efbd64bec890685297a1bc69fec", 878556),
            ("dev.csv", "f94b18e4be2f7322905b7fd152bce78e4d554cb7561426fab6855e7df07790a0", 2795789),
            ("test.csv", "5b5fb42bf500ca344d565461706cdb548ebf21b371f3f871d517d8c967e63ed6", 2797230),
            ("Office.item2index", "4a1d4bb829f89ce23f7f8e6637238a2f9049ca28fed4e73840b36fdba479a046", 37613),
            ("Office.text", "34932e3a6cd6b6d9e999608b309cfa5c6811084dc8be77a18ae89de50da7f862", 262133)]),
        "ysh-1998/LRD: MIT (code repo, ReChorus-derived). " + AMAZON_2014,
        "Per user: train rows by time (file order on ties), then the dev item, then the test item; the "
        "source's own user and item ints.", 4905, 2420, 53258),
    DatasetEntry(
        "clothing", "Amazon Clothing, Shoes and Jewelry (2014), rebuilt from MSL sliding windows (partial)",
        tuple(_f(n, MSL, f"data/Clothing/{n}", h, s) for n, h, s in [
            ("train.csv", "82b2919531dfdeded4a70a449b0b5c46c53fa1124342771268d8e47255f66488", 3160176),
            ("test.csv", "0b8248b1ae414d21a875d484885da93c9d8b3c7d3041e68a61f4dabdeba64186", 384844),
            ("id2name4Rec.json", "9f3796ee632ad99a9c46ba56bb2a79a72c80a53f8cce1959f5b61982777521bd", 1623252)]),
        "none stated (a copy of the MSL authors' code release). " + AMAZON_2014,
        "Per-user windows (<= 10 history items + target) chained at their longest overlap; the validation "
        "split is not in the repository, so users only there are missing.", 35077, 22948, 248959),
    DatasetEntry(
        "ml-100k", "MovieLens-100K (RecBole atomic files): title, year, genres",
        tuple(_f(n, DUOREC, f"recbole/dataset_example/ml-100k/{n}", h, s) for n, h, s in [
            ("ml-100k.inter", "4edb74e2a81178c2ba9ff381495f754f996c4aea351b1272ca36b43da0935eff", 1979230),
            ("ml-100k.item", "51d7cdf777ce5c0f5b32c1d947a4a81fe07d75e78abbe761e0cd4d0756064532", 66632)]),
        "RecBole: MIT. The data: GroupLens MovieLens terms (research use; do not redistribute without "
        "permission).",
        "All 100k ratings as implicit interactions, by timestamp (file order on ties). The files equal "
        "those of the recbole 1.2.1 wheel.", 943, 1682, 100000),
]}


def entry(name: str) -> DatasetEntry:
    if name not in CATALOG:
        raise ConfigError(f"unknown dataset '{name}' (known: {', '.join(CATALOG)})")
    return CATALOG[name]
