"""The demo shop's catalogue: six categories, ~300 SKUs with prices, costs and consumption cycles."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[Any]


@dataclass(frozen=True)
class Template:
    """A kind of product: names, a list-price range (CNY) and a consumption cycle (days)."""

    subcategory: str
    zh: str
    en: str
    low: int
    high: int
    cycle: int


@dataclass(frozen=True)
class Category:
    """A top-level category and how its products behave."""

    name: str
    zh: str
    share: float  # share of purchases that prefer this category
    margin: float  # mean gross margin (1 - cost / price)
    refund_rate: float  # probability of a full refund of a normal order
    staple_rebuy: float  # probability a repeat order re-buys the customer's staple SKU
    max_quantity: int
    brands: tuple[str, ...]
    templates: tuple[Template, ...]


T = Template
CATEGORIES = (
    Category(
        "Beauty", "美妆", 0.24, 0.66, 0.03, 0.45, 3,
        ("露美 Lumière", "花间 Huajian", "素颜 Suyan", "雪肌 Xueji"),
        (
            T("Skincare", "玻尿酸精华", "Hyaluronic Serum", 129, 399, 50),
            T("Skincare", "保湿面霜", "Moisturising Cream", 99, 329, 60),
            T("Skincare", "爽肤水", "Toner", 69, 199, 45),
            T("Skincare", "补水面膜10片", "Sheet Masks x10", 49, 129, 30),
            T("Skincare", "清爽防晒霜", "Sunscreen SPF50", 79, 199, 60),
            T("Skincare", "护手霜", "Hand Cream", 19, 49, 30),
            T("Makeup", "润唇膏", "Lip Balm", 15, 39, 60),
            T("Makeup", "丝绒口红", "Velvet Lipstick", 89, 299, 120),
            T("Makeup", "持妆粉底液", "Long-wear Foundation", 139, 399, 90),
            T("Makeup", "眼影盘", "Eyeshadow Palette", 99, 299, 180),
        ),
    ),
    Category(
        "Baby", "母婴", 0.15, 0.34, 0.02, 0.6, 6,
        ("贝乐 Beile", "小熊 Little Bear", "安宝 Anbao"),
        (
            T("Diapers", "纸尿裤L码52片", "Diapers L 52pcs", 89, 169, 10),
            T("Diapers", "拉拉裤XL码", "Pull-ups XL", 99, 179, 12),
            T("Feeding", "婴儿配方奶粉800g", "Infant Formula 800g", 198, 398, 14),
            T("Feeding", "宽口径奶瓶", "Wide-neck Baby Bottle", 59, 149, 180),
            T("Feeding", "婴儿营养米粉", "Baby Rice Cereal", 39, 89, 20),
            T("Care", "婴儿湿巾6包", "Baby Wipes x6", 29, 69, 15),
            T("Care", "婴儿棉柔巾", "Baby Cotton Tissues", 15, 35, 12),
            T("Care", "婴儿洗护套装", "Baby Bath Set", 69, 159, 60),
        ),
    ),
    Category(
        "Food", "食品", 0.20, 0.30, 0.015, 0.5, 6,
        ("山野 Shanye", "良食工坊 Goodfood Works", "田园 Tianyuan"),
        (
            T("Snacks", "每日坚果礼盒", "Daily Nuts Gift Box", 59, 169, 20),
            T("Snacks", "风干牛肉干", "Beef Jerky", 39, 99, 15),
            T("Snacks", "黄油曲奇", "Butter Cookies", 19, 49, 10),
            T("Snacks", "麻辣辣条", "Spicy Gluten Strips", 9, 19, 7),
            T("Staples", "方便面5连包", "Instant Noodles x5", 15, 29, 10),
            T("Drinks", "挂耳咖啡20袋", "Drip Coffee x20", 49, 129, 20),
            T("Drinks", "明前绿茶250g", "Green Tea 250g", 69, 399, 30),
            T("Drinks", "即食燕麦片", "Instant Oatmeal", 29, 69, 20),
            T("Staples", "东北大米5kg", "Northeast Rice 5kg", 49, 99, 30),
            T("Staples", "特级初榨橄榄油", "Extra Virgin Olive Oil", 69, 169, 45),
        ),
    ),
    Category(
        "Apparel", "服饰", 0.17, 0.55, 0.10, 0.1, 3,
        ("棉语 Mianyu", "北纬 North Latitude", "轻跑 Lightrun"),
        (
            T("Women", "法式连衣裙", "French Dress", 129, 499, 180),
            T("Women", "羊毛针织衫", "Wool Knit Sweater", 99, 399, 240),
            T("Men", "纯棉T恤", "Cotton T-shirt", 49, 149, 120),
            T("Men", "直筒牛仔裤", "Straight Jeans", 129, 399, 240),
            T("Shoes", "轻便运动鞋", "Lightweight Sneakers", 199, 699, 270),
            T("Accessories", "棉袜5双装", "Cotton Socks x5", 19, 49, 90),
            T("Accessories", "发圈10只装", "Hair Ties x10", 9, 19, 90),
        ),
    ),
    Category(
        "Electronics", "数码", 0.10, 0.18, 0.04, 0.05, 2,
        ("极光 Aurora", "声律 Soundrule", "米格 Migo"),
        (
            T("Audio", "降噪蓝牙耳机", "Noise-cancelling Earbuds", 99, 999, 540),
            T("Accessories", "快充充电宝", "Fast-charge Power Bank", 79, 299, 720),
            T("Accessories", "Type-C数据线", "USB-C Cable", 19, 59, 365),
            T("Accessories", "磁吸手机壳", "Magnetic Phone Case", 29, 99, 300),
            T("Devices", "运动智能手表", "Sports Smartwatch", 399, 2499, 900),
            T("Devices", "轻薄平板电脑", "Slim Tablet", 1299, 3999, 1095),
        ),
    ),
    Category(
        "Home", "家居", 0.14, 0.45, 0.04, 0.35, 4,
        ("木屋 Woodhouse", "净洁 Jingjie", "暖居 Nuanju"),
        (
            T("Kitchen", "不粘炒锅", "Non-stick Wok", 99, 399, 540),
            T("Kitchen", "玻璃保鲜盒套装", "Glass Food Containers", 39, 129, 365),
            T("Cleaning", "洗衣液3kg", "Laundry Detergent 3kg", 39, 99, 30),
            T("Cleaning", "抽纸24包", "Facial Tissues x24", 39, 79, 20),
            T("Cleaning", "洗洁精", "Dish Soap", 19, 39, 30),
            T("Cleaning", "厨房海绵擦", "Kitchen Sponges", 9, 19, 30),
            T("Cleaning", "加厚垃圾袋", "Thick Bin Bags", 12, 29, 30),
            T("Bedding", "纯棉四件套", "Cotton Bedding Set", 199, 699, 365),
            T("Bedding", "记忆棉枕头", "Memory Foam Pillow", 79, 299, 540),
        ),
    ),
)

#: Variants that distinguish SKUs of the same template and brand.
VARIANTS = (
    ("经典款", "Classic"), ("升级款", "Plus"), ("轻享装", "Lite"),
    ("大容量", "Family Size"), ("限定款", "Limited"), ("礼盒装", "Gift Box"),
)
#: Subcategories as the shop names them (the demo shop names its catalogue in Chinese).
SUBCATEGORY_ZH = {
    "Accessories": "配饰", "Audio": "音频", "Bedding": "床品", "Care": "护理", "Cleaning": "清洁",
    "Devices": "设备", "Diapers": "纸尿裤", "Drinks": "饮品", "Feeding": "喂养", "Kitchen": "厨具",
    "Makeup": "彩妆", "Men": "男装", "Shoes": "鞋履", "Skincare": "护肤", "Snacks": "零食",
    "Staples": "主食", "Women": "女装",
}
SKUS_PER_TEMPLATE = (6, 9)
#: Share of SKUs with a quality problem (more refunds, lower ratings).
POOR_QUALITY_SHARE = 0.05
#: Share of SKUs launched during the simulated period (not sold before their launch day).
NEW_LAUNCH_SHARE = 0.08


@dataclass(frozen=True)
class Catalogue:
    """The catalogue as parallel arrays, sorted by category (``category_start`` indexes it)."""

    sku: list[str]
    name: list[str]
    template_zh: list[str]
    template_en: list[str]
    category_path: list[str]
    brand: list[str]
    category: Array  # index into CATEGORIES
    price: Array  # list price, fen (int64)
    cost: Array  # unit cost, fen (int64)
    cycle_days: Array
    launched_day: Array  # day index relative to the first simulated day (negative = before)
    popularity: Array  # relative purchase weight within the whole catalogue
    view_appeal: Array  # relative weight of views while browsing
    poor_quality: Array  # bool
    category_start: Array  # first SKU index of each category, plus the end
    entry_sku: Array | None = None  # per category: its traffic driver (``product_roles``)
    designed: dict[str, list[int]] | None = None  # designed product roles → SKU indexes

    @property
    def size(self) -> int:
        """Number of SKUs."""
        return len(self.sku)

    def max_quantity(self) -> Array:
        """Largest quantity a line of each SKU may have."""
        return np.asarray([c.max_quantity for c in CATEGORIES])[self.category]


def make_catalogue(rng: np.random.Generator, days: int) -> Catalogue:
    """Build the catalogue: SKUs per template, log-uniform prices with shop-style endings."""
    sku: list[str] = []
    name: list[str] = []
    tmpl_zh: list[str] = []
    tmpl_en: list[str] = []
    path: list[str] = []
    brand: list[str] = []
    category: list[int] = []
    low: list[int] = []
    high: list[int] = []
    cycle: list[int] = []
    for c_idx, cat in enumerate(CATEGORIES):
        for t_idx, tmpl in enumerate(cat.templates):
            count = int(rng.integers(SKUS_PER_TEMPLATE[0], SKUS_PER_TEMPLATE[1] + 1))
            brands = rng.choice(len(cat.brands), size=count)
            variants = rng.permutation(len(VARIANTS))
            for k in range(count):
                b = cat.brands[int(brands[k])]
                zh_v, _en = VARIANTS[int(variants[k % len(VARIANTS)])]
                sku.append(f"{cat.name[:2].upper()}-{t_idx + 1:02d}{k + 1:02d}")
                name.append(f"{b.split(' ')[0]} {tmpl.zh} {zh_v}")
                tmpl_zh.append(tmpl.zh)
                tmpl_en.append(tmpl.en)
                path.append(f"{cat.zh}/{SUBCATEGORY_ZH[tmpl.subcategory]}")
                brand.append(b.split(" ")[0])
                category.append(c_idx)
                low.append(tmpl.low)
                high.append(tmpl.high)
                cycle.append(tmpl.cycle)
    n = len(sku)
    cat_arr = np.asarray(category, dtype=np.int64)
    # List price: log-uniform in the template's range, rounded up to ten yuan, then .90 / 9.00 / 0 off.
    base = np.exp(rng.uniform(np.log(low), np.log(high)))
    step = np.where(base < 30, 1, 10)  # cheap items end in .90 on the yuan, others on ten yuan
    whole = np.ceil(base / step).astype(np.int64) * step
    ending = rng.choice(np.array([10, 100, 0], dtype=np.int64), size=n, p=[0.5, 0.35, 0.15])
    ending = np.where(step == 1, 10, ending)
    price = whole * 100 - ending
    margins = np.asarray([c.margin for c in CATEGORIES])[cat_arr]
    margin = np.clip(margins + rng.normal(0.0, 0.05, n), 0.05, 0.9)
    cost = np.rint(price * (1.0 - margin)).astype(np.int64)
    cycle_days = np.maximum(
        1, np.rint(np.asarray(cycle) * rng.uniform(0.8, 1.25, n)).astype(np.int64)
    )
    launched = -rng.integers(60, 1100, size=n)
    new = rng.random(n) < NEW_LAUNCH_SHARE
    launched = np.where(new, rng.integers(0, max(1, int(days * 0.8)), size=n), launched)
    shares = np.asarray([c.share for c in CATEGORIES])
    raw = np.exp(rng.normal(0.0, 1.0, n))
    per_cat = np.bincount(cat_arr, weights=raw, minlength=len(CATEGORIES))
    popularity = raw / per_cat[cat_arr] * shares[cat_arr]
    view_appeal = popularity * np.exp(rng.normal(0.0, 0.6, n))
    poor = rng.random(n) < POOR_QUALITY_SHARE
    starts = np.searchsorted(cat_arr, np.arange(len(CATEGORIES) + 1))
    return Catalogue(
        sku=sku,
        name=name,
        template_zh=tmpl_zh,
        template_en=tmpl_en,
        category_path=path,
        brand=brand,
        category=cat_arr,
        price=price.astype(np.int64),
        cost=cost,
        cycle_days=cycle_days,
        launched_day=launched.astype(np.int64),
        popularity=popularity,
        view_appeal=view_appeal / view_appeal.sum(),
        poor_quality=poor,
        category_start=starts.astype(np.int64),
    )


def sample_in_category(
    rng: np.random.Generator, catalogue: Catalogue, categories: Array, weights: Array
) -> Array:
    """One SKU per entry of ``categories``, drawn within that category in proportion to ``weights``."""
    out = np.empty(len(categories), dtype=np.int64)
    u = rng.random(len(categories))
    for c in range(len(CATEGORIES)):
        lo, hi = int(catalogue.category_start[c]), int(catalogue.category_start[c + 1])
        mask = categories == c
        if not mask.any():
            continue
        cdf = np.cumsum(weights[lo:hi])
        cdf /= cdf[-1]
        out[mask] = lo + np.minimum(np.searchsorted(cdf, u[mask], side="right"), hi - lo - 1)
    return out


def describe(catalogue: Catalogue) -> dict[str, Any]:
    """Catalogue facts for ``ground_truth.json``."""
    return {
        "skus": catalogue.size,
        "categories": [
            {
                "name": c.name,
                "zh": c.zh,
                "preference_share": c.share,
                "mean_margin": c.margin,
                "full_refund_rate": c.refund_rate,
                "staple_rebuy_probability": c.staple_rebuy,
                "max_quantity_per_line": c.max_quantity,
                "skus": int(np.sum(catalogue.category == i)),
            }
            for i, c in enumerate(CATEGORIES)
        ],
        "poor_quality_skus": [s for s, p in zip(catalogue.sku, catalogue.poor_quality, strict=True) if p],
        "new_launch_skus": [
            s for s, d in zip(catalogue.sku, catalogue.launched_day, strict=True) if d >= 0
        ],
        "new_launches": "sold and browsed from the day after launched_at",
        "consumption_cycles": "consumption_cycle_days shapes which SKUs repeat orders contain "
        "(staple re-buys), not when customers buy again",
    }
