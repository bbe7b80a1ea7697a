"""UCI Online Retail (a UK online gift shop, 2010-12 .. 2011-12) as a ``Shop``.

- Rows without a CustomerID are dropped (they cannot be attributed to a user).
- Invoice lines with Quantity > 0 and UnitPrice > 0 become PURCHASE events;
  cancellation lines (InvoiceNo starting with "C") become RETURN events.
  The rest (40 lines with a customer: zero prices, stock adjustments) is dropped.
  Service codes (POST, M, BANK CHARGES, ...) are kept, as in the reference
  benchmark of shared/data/README.md, in the category "Service".
- ``session_id`` = InvoiceNo, ``price`` = UnitPrice, ``timestamp`` = InvoiceDate read as UTC.
- ``client_event_id`` = ``online-retail-{row}``, the row's position in the file,
  so re-loading the file adds nothing (exact duplicate lines stay distinct events).
- Users: CustomerID, country as an ISO 3166 code (``COUNTRY_CODES``; names not in it are kept).
- Products: ``retail_product_id(StockCode)``, name = most frequent Description,
  price = median UnitPrice, category = ``categorize_description(name)``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.constants import PURCHASE, RETURN
from recsys.data.ids import stable_id, stable_ids, to_epoch_ms
from recsys.data.log_tables import shop_from_log
from recsys.data.synthetic import Shop

SOURCE = "online-retail"
COLUMNS = ("InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID", "Country")

COUNTRY_CODES = {
    "United Kingdom": "GB", "Germany": "DE", "France": "FR", "EIRE": "IE", "Spain": "ES", "Netherlands": "NL",
    "Belgium": "BE", "Switzerland": "CH", "Portugal": "PT", "Australia": "AU", "Norway": "NO", "Italy": "IT",
    "Finland": "FI", "Cyprus": "CY", "Sweden": "SE", "Austria": "AT", "Denmark": "DK", "Japan": "JP",
    "Poland": "PL", "USA": "US", "Israel": "IL", "Singapore": "SG", "Iceland": "IS", "Canada": "CA",
    "Greece": "GR", "Malta": "MT", "United Arab Emirates": "AE", "European Community": "EU", "RSA": "ZA",
    "Lebanon": "LB", "Lithuania": "LT", "Brazil": "BR", "Czech Republic": "CZ", "Bahrain": "BH",
    "Saudi Arabia": "SA", "Hong Kong": "HK",
}  # "Channel Islands" (no single ISO code) and "Unspecified" are kept as written

# First rule whose keyword is a word of the description wins; otherwise "Other".
CATEGORY_RULES: tuple[tuple[str, frozenset[str]], ...] = tuple((name, frozenset(words.split())) for name, words in (
    ("Service", "POSTAGE CARRIAGE MANUAL DISCOUNT CHARGES FEE ADJUST SAMPLES CRUK COMMISSION"),
    ("Christmas", "CHRISTMAS XMAS ADVENT SANTA REINDEER SNOWFLAKE SNOWMAN BAUBLE BAUBLES NATIVITY"),
    ("Easter", "EASTER CHICK CHICKS"),
    ("Candles & Lighting", "CANDLE CANDLES T-LIGHT T-LIGHTS TEALIGHT TEALIGHTS CANDLEHOLDER LANTERN LAMP "
                           "LAMPSHADE LIGHT LIGHTS INCENSE NIGHTLIGHT"),
    ("Bags", "BAG BAGS TOTE SHOPPER HANDBAG"),
    ("Jewellery & Accessories", "NECKLACE NECKL BRACELET EARRINGS PENDANT BROOCH CHARM CHARMS DIAMANTE "
                                "BEAD BEADS BEADED HAIR HAIRCLIP CLIP UMBRELLA PURSE WALLET KEYRING BLING "
                                "JEWELLED SCARF GLOVES RING"),
    ("Toys & Games", "TOY TOYS GAME GAMES JIGSAW PUZZLE DOLL DOLLY DOLLS SKITTLES DOMINOES PLAYING TEDDY "
                     "PUPPET MARBLES SPINNING BINGO DINOSAUR PLAYHOUSE PAINT KIT"),
    ("Party & Gift Wrap", "PARTY BUNTING BALLOON BALLOONS CONFETTI BIRTHDAY WRAP RIBBON RIBBONS GARLAND "
                          "BANNER STRAWS CRACKERS TAGS"),
    ("Kitchen & Dining", "MUG MUGS CUP CUPS SAUCER TEACUP TEAPOT TEA COFFEE PLATE PLATES BOWL BOWLS JUG "
                         "CUTLERY SPOON SPOONS FORK KNIFE NAPKIN NAPKINS TRAY CAKE CAKES CAKESTAND BAKING "
                         "CASES JAR JARS LUNCH PANTRY KITCHEN BEAKER DISH DINNER BREAKFAST PAN FRYING APRON "
                         "COASTER COASTERS TOAST DOILIES DOILY DOILEY SNACK BISCUIT JAM MILK PICNIC FOOD "
                         "RECIPE TUMBLER TINS TIN GLASSES CHOPSTICKS FRUITBOWL SQUEEZER FLASK MITT"),
    ("Stationery", "CARD CARDS GREETING NOTEBOOK SKETCHBOOK PEN PENS PENCIL PENCILS STICKER STICKERS TAPE "
                   "ENVELOPE ENVELOPES CALENDAR NOTEPAD ERASER RULER PAPER DIARY JOURNAL BOOK BOOKMARK "
                   "TISSUES TISSUE STATIONERY CHALK"),
    ("Garden & Outdoor", "GARDEN PLANT PLANTER PLANTERS WATERING PARASOL BIRDHOUSE FEEDER SEED SEEDS HERB "
                         "GNOME OUTDOOR HAMMOCK WINDMILL POT POTS"),
    ("Home Decor", "FRAME FRAMES CLOCK SIGN MIRROR CUSHION DOORMAT ORNAMENT DECORATION DECORATIONS HOOK HOOKS "
                   "HANGER CURTAIN VASE PLAQUE WALL SHELF CABINET DRAWER DOORSTOP KNOB PHOTO PICTURE "
                   "CHALKBOARD BLACKBOARD MAGNETS MAGNET TIDY RACK BATHROOM WREATH HANGING PHOTOFRAME DRAWERS "
                   "CHANDELIER DECORATIVE ARTIFICIAL FLOWER FLOWERS LETTERS"),
    ("Storage", "BOX BOXES BASKET BASKETS STORAGE CONTAINER TRUNK CRATE BIN"),
    ("Textiles", "TOWEL TOWELS BLANKET THROW QUILT COSY FLANNEL FABRIC SEWING KNITTED CROCHET FELT "
                 "FELTCRAFT WARMER BOTTLE"),
))
_WORD = re.compile(r"[A-Z]+(?:-[A-Z]+)?")
_PLAIN_CODE = re.compile(r"^(\d{5})([A-Z]{0,2})$")


def categorize_description(description: str) -> str:
    words = set(_WORD.findall(str(description).upper()))
    for name, keywords in CATEGORY_RULES:
        if words & keywords:
            return name
    return "Other"


def retail_product_id(stock_code: str) -> int:
    """``85123`` -> 85123000, ``85123A`` -> 85123001, ``15056BL`` -> 15056066 (upper-cased: A=1..Z=26,
    two letters 27*a+b); other codes (``POST``, ``gift_0001_20``) -> ``stable_id`` (hashed, >= 2**40)."""
    code = str(stock_code).strip().upper()
    match = _PLAIN_CODE.match(code)
    if not match:
        return stable_id(code)
    suffix = 0
    for letter in match.group(2):
        suffix = 27 * suffix + (ord(letter) - ord("A") + 1)
    return int(match.group(1)) * 1000 + suffix


def _read_raw(path: Path) -> pd.DataFrame:
    if path.suffix == ".parquet":
        raw = pd.read_parquet(path)
    else:
        raw = pd.read_csv(path, dtype={"InvoiceNo": "str", "StockCode": "str"})
    missing = [c for c in COLUMNS if c not in raw.columns]
    if missing:
        raise ValueError(f"{path}: not an Online Retail file, missing column(s) {missing}")
    return raw.reset_index(drop=True)


def read_online_retail(path: str | Path) -> Shop:
    return shop_from_log(online_retail_log(path), categorize=categorize_description)


def online_retail_log(path: str | Path) -> pd.DataFrame:
    """The normalised event log of the file (``recsys.data.log_tables``), before it becomes a ``Shop``."""
    raw = _read_raw(Path(path))
    invoice = raw["InvoiceNo"].astype("str")
    cancel = invoice.str.startswith("C")
    has_user = raw["CustomerID"].notna()
    keep = has_user & (cancel | ((raw["Quantity"] > 0) & (raw["UnitPrice"] > 0)))
    rows = raw[keep]
    codes = rows["StockCode"].astype("str")
    unique_codes, code_index = np.unique(codes.to_numpy(dtype=object), return_inverse=True)
    log = pd.DataFrame({
        "user_id": stable_ids(rows["CustomerID"]),
        "product_id": np.array([retail_product_id(c) for c in unique_codes], dtype=np.int64)[code_index],
        "event_type": pd.array(np.where(cancel[keep], RETURN, PURCHASE), dtype="str"),
        "session_id": invoice[keep].to_numpy(),
        "timestamp": to_epoch_ms(rows["InvoiceDate"]),
        "price": rows["UnitPrice"].to_numpy(dtype=np.float64),
        "client_event_id": f"{SOURCE}-" + pd.Series(rows.index, dtype="int64").astype("str").to_numpy(),
        "name": rows["Description"].str.strip().to_numpy(),
        "country": rows["Country"].map(lambda c: COUNTRY_CODES.get(c, c)).to_numpy(),
    })
    return log
