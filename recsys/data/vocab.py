"""Fixed vocabularies of the synthetic shop: categories, name words, countries.

Plain data, no logic. Each category carries its share of the catalogue, the
lognormal parameters of its prices (median, sigma) and the nouns its product
names are made of; a *style* word (a name token with its own hidden taste
direction) and a colour word (noise) complete a name: "Vintage Navy Boots".
"""

from __future__ import annotations

# name, share of the catalogue, median price, price sigma, nouns
CATEGORIES: tuple[tuple[str, float, float, float, tuple[str, ...]], ...] = (
    ("Electronics", 0.12, 80.0, 0.9, ("Headphones", "Speaker", "Charger", "Keyboard", "Webcam", "Tablet",
                                      "Smartwatch", "Camera", "Earbuds", "Monitor")),
    ("Books", 0.10, 15.0, 0.4, ("Novel", "Cookbook", "Biography", "Thriller", "Anthology", "Guidebook",
                                "Memoir", "Atlas")),
    ("Home", 0.10, 35.0, 0.7, ("Lamp", "Cushion", "Curtain", "Rug", "Vase", "Blanket", "Mirror", "Clock")),
    ("Kitchen", 0.08, 30.0, 0.7, ("Kettle", "Toaster", "Skillet", "Knife", "Blender", "Mug", "Teapot", "Grater")),
    ("Shoes", 0.07, 70.0, 0.5, ("Sneakers", "Boots", "Sandals", "Loafers", "Heels", "Slippers", "Trainers")),
    ("Fashion", 0.11, 45.0, 0.6, ("Jacket", "Dress", "Shirt", "Jeans", "Scarf", "Sweater", "Hoodie", "Coat")),
    ("Beauty", 0.08, 22.0, 0.6, ("Serum", "Lipstick", "Moisturizer", "Shampoo", "Perfume", "Mascara",
                                 "Cleanser", "Lotion")),
    ("Toys", 0.07, 25.0, 0.6, ("Puzzle", "Robot", "Doll", "Blocks", "Kite", "Plush", "Racecar", "Boardgame")),
    ("Sports", 0.07, 40.0, 0.8, ("Dumbbell", "Racket", "Football", "Helmet", "Yogamat", "Bicycle", "Gloves")),
    ("Garden", 0.05, 25.0, 0.7, ("Planter", "Hose", "Shovel", "Seeds", "Trowel", "Birdhouse", "Sprinkler")),
    ("Grocery", 0.06, 8.0, 0.5, ("Coffee", "Tea", "Chocolate", "Honey", "Pasta", "Granola", "Spices")),
    ("Pet Supplies", 0.05, 20.0, 0.7, ("Leash", "Collar", "Kibble", "Catnip", "Aquarium", "Petbed")),
    ("Jewelry", 0.04, 60.0, 0.9, ("Necklace", "Bracelet", "Earrings", "Ring", "Pendant", "Brooch")),
)

# style words: each has a hidden taste direction; second value multiplies the price
STYLES: tuple[tuple[str, float], ...] = (
    ("Vintage", 1.1), ("Eco", 1.1), ("Premium", 1.8), ("Classic", 1.0), ("Sport", 1.0), ("Kids", 0.7),
    ("Smart", 1.4), ("Organic", 1.2), ("Minimalist", 1.0), ("Deluxe", 1.6), ("Retro", 1.0), ("Travel", 0.9),
)

COLOURS: tuple[str, ...] = ("Red", "Blue", "Black", "White", "Green", "Grey", "Pink", "Navy", "Beige", "Gold")

# ISO 3166 code, share of users, main language, second language, share speaking the second
COUNTRIES: tuple[tuple[str, float, str, str, float], ...] = (
    ("US", 0.32, "en", "es", 0.12),
    ("GB", 0.11, "en", "en", 0.0),
    ("DE", 0.10, "de", "en", 0.05),
    ("FR", 0.08, "fr", "en", 0.03),
    ("ES", 0.04, "es", "ca", 0.10),
    ("JP", 0.08, "ja", "en", 0.03),
    ("AU", 0.05, "en", "en", 0.0),
    ("IN", 0.10, "en", "hi", 0.35),
    ("BR", 0.08, "pt", "en", 0.03),
    ("MX", 0.04, "es", "en", 0.05),
)

DEVICE_SHARES: tuple[tuple[str, float], ...] = (("mobile", 0.62), ("desktop", 0.38))
