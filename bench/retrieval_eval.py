"""A retrieval-quality eval over real documents nobody in this project wrote.

The corpus is documentation that ships inside Ponder's own dependencies
(numpy, pip, PySide6) plus the Shared MIME-info Database specification, a
17-page PDF from Debian's shared-mime-info package. Each question names the
file (and, for the PDF, the page) that answers it.
"""
from __future__ import annotations

import sysconfig
from pathlib import Path

PDF = Path("/usr/share/doc/shared-mime-info/shared-mime-info-spec.pdf")  # apt-get install shared-mime-info
SITE = Path(sysconfig.get_paths()["purelib"])
TEXT_DOCS = ("numpy/ma/README.rst", "numpy/ma/API_CHANGES.txt", "pip/_vendor/README.rst",
             "PySide6/doc/qtcore.rst", "PySide6/doc/qtqml.rst", "PySide6/doc/qtquicktest.rst",
             "PySide6/doc/qtuitools.rst")

# (question, the end of the expected file's path, expected page or None)
QUESTIONS = (
    ("Which command must an application run after installing or modifying its MIME package XML file?",
     PDF.name, 3),
    ("Which version of the Shared MIME-info Database specification is this, and when was it last updated?",
     PDF.name, 1),
    ("Which RFC defines how the key words MUST and SHOULD are to be interpreted?", PDF.name, 2),
    ("What does each line of the globs2 file contain, and how are the fields separated?", PDF.name, 7),
    ("Must applications match filename globs case-insensitively?", PDF.name, 7),
    ("How is the magic-deleteall attribute written out into the magic file?", PDF.name, 10),
    ("What is the form of a line in the XMLnamespaces files?", PDF.name, 10),
    ("What does the binary mmappable mime.cache file contain?", PDF.name, 11),
    ("Which extended attribute may hold a file's MIME type set by the user?", PDF.name, 14),
    ("Is every image/svg+xml file also an application/xml file? What does subclassing mean?", PDF.name, 14),
    ("Which default type is used for binary data when no magic rule matches?", PDF.name, 15),
    ("How can a mount point be detected by comparing st_dev of a directory with its parent?", PDF.name, 16),
    ("What is the x-content type for, such as x-content/blank-cd or x-content/audio-dvd?", PDF.name, 16),
    ("Should an application trust a downloaded file simply because of its MIME type?", PDF.name, 16),
    ("Should users edit the MIME database to store their preferences, like which program opens text/html?",
     PDF.name, 17),
    ("Why does pip vendor its dependencies instead of declaring them in install_requires?", "_vendor/README.rst", None),
    ("Under which license must libraries vendored into pip be available?", "_vendor/README.rst", None),
    ("Where must the versions of the libraries vendored in pip be recorded?", "_vendor/README.rst", None),
    ("How was setuptools changed when it was vendored into pip?", "_vendor/README.rst", None),
    ("Who wrote the guide to masked arrays, and what frustrated him about subclassing?", "ma/README.rst", None),
    ("Is fill_value a property or a function in the new masked array implementation?", "ma/README.rst", None),
    ("How do cumsum and cumprod treat the masked values of a masked array?", "ma/README.rst", None),
    ("Why does the test x._data is x._data return False for a masked array?", "API_CHANGES.txt", None),
    ("What type does filled(x) return when the masked array wraps a numpy matrix?", "API_CHANGES.txt", None),
    ("What does Q_ARG return, and what is it passed to?", "qtcore.rst", None),
    ("On macOS, does QLocale.system() follow the user's region and language preferences?", "qtcore.rst", None),
    ("How do I make QUiLoader recognise my own Python custom widget when loading a .ui file?", "qtuitools.rst",
     None),
    ("Why does overriding a virtual method by duck punching fail for widgets created by QUiLoader?",
     "qtuitools.rst", None),
    ("Where does QUICK_TEST_MAIN look for test sources, and what does QUICK_TEST_SOURCE_DIR change?",
     "qtquicktest.rst", None),
    ("What extra setup argument does the Qt Quick Test entry point with setup take?", "qtquicktest.rst", None),
    ("How do I register a singleton Python object for QML with a uri, version and type name?", "qtqml.rst",
     None),
    ("What does qmlRegisterSingletonType return?", "qtqml.rst", None),
)
# A second, separate set for tuning the fusion (never scored by `ponder bench`): the GNU Libtasn1 manual,
# a 36-page PDF from Debian's libtasn1-doc package. Tuning on it keeps QUESTIONS above a held-out test.
TUNING_PDF = Path("/usr/share/doc/libtasn1-doc/libtasn1.pdf")
TUNING_QUESTIONS = (
    ("Which version of GNU Libtasn1 does this manual describe, and of what date?", TUNING_PDF.name, 2),
    ("Which ITU-T recommendations do the library's parsing and encoding follow?", TUNING_PDF.name, 4),
    ("Are C-style /* */ comments allowed in ASN.1 definition files?", TUNING_PDF.name, 5),
    ("Why is Version ::=INTEGER rejected by the parser?", TUNING_PDF.name, 5),
    ("Does the library support the REAL type or AUTOMATIC TAGS?", TUNING_PDF.name, 6),
    ("How do I refer to the Group type inside the Example definitions?", TUNING_PDF.name, 6),
    ("Which asn1Parser option only checks the syntax without generating output?", TUNING_PDF.name, 8),
    ("What syntax must the assignments file given to asn1Coding follow?", TUNING_PDF.name, 8),
    ("How do I write an assignment file when the root element is a CHOICE?", TUNING_PDF.name, 9),
    ("Which asn1Decoding option runs a decoding benchmark?", TUNING_PDF.name, 10),
    ("What does asn1_parser2tree return when an identifier in the file is not defined?", TUNING_PDF.name, 11),
    ("Where does the array given to asn1_array2tree come from?", TUNING_PDF.name, 12),
    ("How do I create a new structure of a named type such as PKIX1.Certificate?", TUNING_PDF.name, 13),
    ("What is the difference between asn1_copy_node and asn1_dup_node?", TUNING_PDF.name, 14),
    ("How do I write a BOOLEAN or an OBJECT IDENTIFIER value with asn1_write_value?", TUNING_PDF.name, 15),
    ("What does it mean when reading an OPTIONAL element returns element not found?", TUNING_PDF.name, 16),
    ("What is the name of the first element of a SEQUENCE OF?", TUNING_PDF.name, 16),
    ("Is the OCTET STRING tag included in the output of asn1_octet_der?", TUNING_PDF.name, 19),
    ("How can I find out how many bytes the DER encoding of a length will take?", TUNING_PDF.name, 19),
    ("Is the BIT STRING tag included in what asn1_bit_der produces?", TUNING_PDF.name, 20),
)


def corpus_paths() -> list[Path]:
    paths = [SITE / p for p in TEXT_DOCS if (SITE / p).exists()]
    if PDF.exists():
        paths.append(PDF)
    return paths


def is_hit(path: str, page: int | None, suffix: str, want_page: int | None) -> bool:
    return Path(path).as_posix().endswith("/" + suffix) and (want_page is None or page == want_page)


def recall(library, collection: str, mode: str, questions=QUESTIONS) -> tuple[float, float]:
    """(recall@1, recall@5) over `questions` (the eval set unless told)."""
    at1 = at5 = 0
    for question, suffix, page in questions:
        hits = library.search(collection, question, k=5, mode=mode)
        found = [is_hit(h.path, h.page, suffix, page) for h in hits]
        at1 += bool(found[:1] and found[0])
        at5 += any(found)
    return at1 / len(questions), at5 / len(questions)


# What a right answer says, for scoring answers from documents (bench/document_answers.py): every pattern (a
# case-insensitive regular expression) must appear in the answer. Written from the documents, one per question
# of both sets above.
ANSWERS = {
    QUESTIONS[0][0]: (r"update-mime-database",),
    QUESTIONS[1][0]: (r"0\.21", r"2018"),
    QUESTIONS[2][0]: (r"2119",),
    QUESTIONS[3][0]: (r"weight", r"colon"),
    QUESTIONS[4][0]: (r"\byes\b|\bmust\b",),
    QUESTIONS[5][0]: (r"__NOMAGIC__|NOMAGIC",),
    QUESTIONS[6][0]: (r"namespace", r"local ?name"),
    QUESTIONS[7][0]: (r"globs", r"magic|alias|subclass"),
    QUESTIONS[8][0]: (r"user\.mime_type",),
    QUESTIONS[9][0]: (r"\byes\b|\ball\b", r"instance|also"),
    QUESTIONS[10][0]: (r"octet-stream",),
    QUESTIONS[11][0]: (r"differ",),
    QUESTIONS[12][0]: (r"volume|file ?system",),
    QUESTIONS[13][0]: (r"\bno\b|\bnot\b|never",),
    QUESTIONS[14][0]: (r"\bno\b|\bnot\b|never",),
    QUESTIONS[15][0]: (r"fragil|uninstallable|bootstrap|fix pip|can ?not run|can't run|security",),
    QUESTIONS[16][0]: (r"\bMIT\b",),
    QUESTIONS[17][0]: (r"vendor\.txt",),
    QUESTIONS[18][0]: (r"pkg_resources",),
    QUESTIONS[19][0]: (r"Pierre|Gerard-Marchant",),
    QUESTIONS[20][0]: (r"property",),
    QUESTIONS[21][0]: (r"\b0\b|zero", r"\b1\b|\bone\b"),
    QUESTIONS[22][0]: (r"property",),
    QUESTIONS[23][0]: (r"matrix",),
    QUESTIONS[24][0]: (r"invokeMethod",),
    QUESTIONS[25][0]: (r"\bno\b|\bnot\b",),
    QUESTIONS[26][0]: (r"registerCustomWidget",),
    QUESTIONS[27][0]: (r"regist|custom widget",),
    QUESTIONS[28][0]: (r"current (working )?directory",),
    QUESTIONS[29][0]: (r"QObject",),
    QUESTIONS[30][0]: (r"qmlRegisterSingletonInstance",),
    QUESTIONS[31][0]: (r"\bint\b|integer|type id",),
    TUNING_QUESTIONS[0][0]: (r"4\.19", r"2022"),
    TUNING_QUESTIONS[1][0]: (r"X\.?680", r"X\.?690"),
    TUNING_QUESTIONS[2][0]: (r"\bno\b|\bnot\b",),
    TUNING_QUESTIONS[3][0]: (r"separate|space",),
    TUNING_QUESTIONS[4][0]: (r"\bno\b|\bnot\b|doesn't|does not",),
    TUNING_QUESTIONS[5][0]: (r"Example\.Group",),
    TUNING_QUESTIONS[6][0]: (r"-c\b|--check",),
    TUNING_QUESTIONS[7][0]: (r"InstanceName|nameString|name.{0,20}value",),
    TUNING_QUESTIONS[8][0]: (r"''|’’|dNSName|GeneralName",),
    TUNING_QUESTIONS[9][0]: (r"-b\b|--benchmark",),
    TUNING_QUESTIONS[10][0]: (r"IDENTIFIER_NOT_FOUND",),
    TUNING_QUESTIONS[11][0]: (r"parser2array",),
    TUNING_QUESTIONS[12][0]: (r"asn1_create_element|create.element",),
    TUNING_QUESTIONS[13][0]: (r"asn1_create_element|expand|exact copy|dup",),
    TUNING_QUESTIONS[14][0]: (r"TRUE|FALSE", r"number|dot|\d\.\d"),
    TUNING_QUESTIONS[15][0]: (r"(was|is)n['’]?t present|not present|absent|missing|not (there|included)",),
    TUNING_QUESTIONS[16][0]: (r"\?1",),
    TUNING_QUESTIONS[17][0]: (r"\bno\b|\bnot\b",),
    TUNING_QUESTIONS[18][0]: (r"asn1_length_der|NULL",),
    TUNING_QUESTIONS[19][0]: (r"\bno\b|\bnot\b",),
}


def answer_is_right(question: str, answer: str) -> bool:
    import re

    return all(re.search(p, answer, re.IGNORECASE) for p in ANSWERS[question])


def tuning_paths() -> list[Path]:
    return [TUNING_PDF] if TUNING_PDF.exists() else []
