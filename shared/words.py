"""Word lists for memorable names: Adjective + Colour + Breed, each already in CamelCase."""

ADJECTIVES = tuple("""
Able Adorable Agile Amiable Ample Ancient Ardent Artful Audacious August Blissful Bold
Bouncy Brave Breezy Bright Brilliant Bubbly Calm Candid Carefree Charming Cheerful Chic
Clever Cosmic Courageous Cozy Crisp Curious Dapper Daring Dashing Dazzling Deft Delightful
Devoted Dreamy Eager Earnest Elegant Eloquent Enchanted Epic Exquisite Fabulous Fancy
Fearless Feisty Fierce Fluffy Fond Fortunate Frisky Gallant Gentle Giddy Gleaming Glorious
Graceful Grand Happy Hardy Hearty Heroic Honest Humble Jaunty Jolly Jovial Joyful Keen Kind
Lively Lofty Loyal Lucky Luminous Lush Majestic Mellow Merry Mighty Mirthful Modest Nimble
Noble Peppy Perky Placid Playful Plucky Plush Polite Proud Quick Quiet Quirky Radiant
Regal Robust Rosy Rustic Sassy Serene Shiny Silky Sleek Sleepy Snappy Snug Sparkling
Splendid Sprightly Spry Stately Stellar Sublime Sunny Superb Swift Tender Thrifty Tidy
Timeless Tranquil Trusty Upbeat Valiant Vibrant Vivid Whimsical Wily Winsome Wise Witty
Zany Zealous Zesty
""".split())

COLOURS = tuple("""
Amber Amethyst Apricot Aqua Azure Beige Blush Bronze Buff Burgundy Butter Cameo Caramel
Carmine Celadon Cerise Cerulean Champagne Charcoal Cherry Chestnut Cinnamon Citrine Claret
Cobalt Cocoa Copper Coral Cream Crimson Cyan Daffodil Dandelion Denim Ebony Ecru Emerald
Fawn Fern Flax Fuchsia Garnet Ginger Gold Graphite Hazel Heather Honey Indigo Ivory Jade
Jasmine Jet Khaki Lavender Lemon Lilac Lime Linen Magenta Mahogany Maize Malachite Mango
Maroon Mauve Mint Moss Mulberry Mustard Navy Nutmeg Ochre Olive Onyx Orchid Peach Pearl
Periwinkle Pewter Pine Pistachio Plum Poppy Pumpkin Quartz Raspberry Rose Ruby Russet Rust
Saffron Sage Salmon Sand Sapphire Scarlet Sepia Sienna Silver Slate Smoke Snow Straw
Tangerine Taupe Teal Thistle Topaz Tulip Turquoise Umber Vanilla Violet Walnut Wheat Wine
Wisteria
""".split())

BREEDS = tuple("""
Abyssinian AmericanBobtail AmericanCurl AmericanShorthair AmericanWirehair Balinese Bengal
Birman Bombay BritishLonghair BritishShorthair Burmese Burmilla Chartreux Chausie
ColorpointShorthair CornishRex Cymric DevonRex DonskoySphynx EgyptianMau EuropeanShorthair
ExoticShorthair HavanaBrown Himalayan JapaneseBobtail Javanese KhaoManee Korat KurilianBobtail
LaPerm Lykoi MaineCoon Manx Minskin Munchkin Nebelung NorwegianForest Ocicat OrientalLonghair
OrientalShorthair Persian Peterbald Pixiebob Ragamuffin Ragdoll RussianBlue Savannah
ScottishFold SelkirkRex Serengeti Siamese Siberian Singapura Snowshoe Sokoke Somali Sphynx
Thai Tonkinese Toyger TurkishAngora TurkishVan UkrainianLevkoy YorkChocolate
""".split())
