"""The grammar of the v2 synthetic generator: topics, aspects, attribute wordings and passage templates.

A v2 passage (100-200 words, about 11 sentences) is about one topic and one aspect and shows each of the four
binary attributes in several places, not in one marker word:
    audience  an opening, an aside and a closing addressed to children (value 0) or to specialists (value 1)
    period    an era frame and the tense of every body sentence: past (value 0) or present (value 1)
    stance    two evaluative sentences, approving (value 0) or critical (value 1)
    format    the body as numbered points (value 0) or as one paragraph with connectives (value 1)
Body sentences come from the aspect's bank with filler slots ({place}, {person}, {num}, {year}, {material},
{group}); ``[present|past]`` in a template is resolved by the period. Instructions (v2) name the query's topic
in a context sentence (TRAIN_CONTEXTS; held-out rows use HELDOUT_CONTEXTS only) and constrain attributes with
wordings that share no content word with the passage markers.
"""

from __future__ import annotations

import random
import re

TOPICS = (
    "beekeeping",
    "cheese making",
    "glass blowing",
    "rock climbing",
    "sailing",
    "pottery",
    "coffee farming",
    "wind power",
    "bridge building",
    "scuba diving",
    "falconry",
    "wine making",
    "paper making",
    "blacksmithing",
    "chess",
    "archery",
    "beer brewing",
    "bread baking",
    "tea growing",
    "rice farming",
    "horse riding",
    "surfing",
    "woodworking",
    "knitting",
    "photography",
    "gardening",
    "fly fishing",
    "mountain biking",
    "skiing",
    "weaving",
    "soap making",
    "candle making",
    "origami",
    "calligraphy",
    "kayaking",
    "stargazing",
    "birdwatching",
    "cave exploring",
    "hot air ballooning",
    "perfume making",
    "violin making",
    "bonsai growing",
    "mushroom foraging",
    "sheep herding",
    "lighthouse keeping",
    "clock repair",
    "bookbinding",
    "stone carving",
    "salt harvesting",
    "oyster farming",
    "silk production",
    "leather tanning",
    "rope making",
    "boat building",
    "map making",
    "letterpress printing",
    "radio broadcasting",
    "canal building",
    "well digging",
    "coal mining",
    "gold panning",
    "pearl diving",
    "ice skating",
    "marathon running",
    "fencing",
    "rowing",
    "judo",
    "curling",
    "dog sledding",
    "orchid breeding",
    "olive pressing",
    "chocolate making",
    "pasta making",
    "sausage curing",
    "sourdough baking",
    "jam preserving",
    "herbal medicine",
    "water purification",
    "composting",
    "solar power",
    "hydroelectric power",
    "weather forecasting",
    "volcano monitoring",
    "tunnel boring",
    "skyscraper design",
    "street lighting",
    "museum curation",
    "puppetry",
    "circus acrobatics",
    "stage magic",
    "poetry writing",
    "typography",
    "mosaic making",
    "jewellery making",
    "watch making",
    "locksmithing",
    "tailoring",
    "shoe making",
)

# aspect -> (queries, body sentence templates)
ASPECTS = {
    "cost": (
        (
            "how much money does it take to get started with {topic}",
            "what are the real expenses of taking up {topic} as a hobby",
            "is {topic} too expensive for an ordinary household budget",
            "which costs should a newcomer to {topic} plan for",
            "where does the money go when people spend it on {topic}",
        ),
        (
            "A starter kit for {topic} [costs|cost] around {num} euros in {place}.",
            "Membership of the {place} society [is|was] {num} a year, and lessons [are|were] extra.",
            "{person} [keeps|kept] a ledger showing that repairs [eat|ate] a third of the budget.",
            "Second-hand {material} [sells|sold] for half the price of new stock.",
            "Insurance for {group} [adds|added] another {num} to the yearly bill.",
            "Prices [rise|rose] sharply after a poor harvest of {material}.",
            "Most households [spend|spent] more on travel to events than on the gear itself.",
            "A shared workshop [cuts|cut] the cost of tools for {group} by pooling them.",
            "Grants from the {place} fund [cover|covered] part of the fees for young members.",
            "The cheapest option [is|was] to borrow {material} from a neighbour.",
        ),
    ),
    "safety": (
        (
            "how dangerous is {topic} for people who are just beginning",
            "what kinds of injuries are common in {topic}",
            "which safety rules matter most when practising {topic}",
            "can you get badly hurt doing {topic} without training",
            "what protective measures do people take in {topic}",
        ),
        (
            "Accident reports from {place} [list|listed] cuts, burns and falls as the usual harm.",
            "{person} [insists|insisted] that nobody [works|worked] alone near {material}.",
            "Gloves, goggles and sturdy boots [are|were] the standard protection for {group}.",
            "Most injuries [happen|happened] in the first {num} hours of practice.",
            "A first-aid box [hangs|hung] by the door of every workshop in {place}.",
            "Fumes from heated {material} [irritate|irritated] the lungs of careless workers.",
            "Inspectors [visit|visited] the sites in {place} every {num} weeks.",
            "Fatigue [causes|caused] more mishaps than faulty tools.",
            "Training courses [teach|taught] {group} how to react when something [goes|went] wrong.",
            "Hospitals near {place} [treat|treated] a few {num} cases each season.",
        ),
    ),
    "environment": (
        (
            "what effect does {topic} have on the natural environment",
            "does {topic} pollute rivers, soil or the air around it",
            "how does {topic} affect wildlife and local ecosystems",
            "is {topic} sustainable over the long term for the planet",
            "what is the carbon footprint of {topic} compared with other activities",
        ),
        (
            "Runoff from the sites near {place} [carries|carried] waste into the river.",
            "{person} [counts|counted] the birds nesting beside the workshops every spring.",
            "Burning {material} [releases|released] smoke that [drifts|drifted] over the fields.",
            "Water use [reaches|reached] {num} litres a day at the largest site.",
            "Forests around {place} [are|were] thinned to supply {material}.",
            "Recycled {material} [replaces|replaced] part of the raw supply.",
            "Fish stocks downstream [recover|recovered] once filters [are|were] fitted.",
            "Noise [disturbs|disturbed] the deer that [graze|grazed] near the sheds.",
            "The {place} council [measures|measured] soil quality along the banks.",
            "{group} [plant|planted] {num} trees to offset the energy they [use|used].",
        ),
    ),
    "equipment": (
        (
            "what equipment do you need before you can start {topic}",
            "which tools are essential for doing {topic} properly",
            "what gear should a beginner buy first for {topic}",
            "how is the equipment for {topic} maintained and repaired",
            "what materials and instruments are used in {topic}",
        ),
        (
            "The basic set [includes|included] a bench, clamps and a supply of {material}.",
            "{person} [sharpens|sharpened] every blade by hand before each session.",
            "Workshops in {place} [store|stored] their {material} in dry wooden crates.",
            "A good pair of tongs [lasts|lasted] about {num} years of daily use.",
            "Specialised gauges [help|helped] {group} check their measurements.",
            "Spare parts [come|came] from a single supplier in {place}.",
            "Heavier tools [sit|sat] on racks along the back wall.",
            "Every kit [contains|contained] a few delicate parts made of {material}.",
            "Cleaning the gear after use [takes|took] roughly {num} minutes.",
            "{group} [repair|repaired] broken frames with glue and thin wire.",
        ),
    ),
    "origins": (
        (
            "where and when did {topic} first begin",
            "who were the first people to practise {topic}",
            "how did {topic} spread from one region to another",
            "what is the early history behind {topic}",
            "which traditions shaped the beginnings of {topic}",
        ),
        (
            "Records from {place} [trace|traced] the craft back to about {year}.",
            "{person} [is|was] often named as the first to write its methods down.",
            "Merchants [carry|carried] the knowledge along the trade roads east of {place}.",
            "Early guilds [guard|guarded] their methods and [admit|admitted] only relatives.",
            "Old tools made of {material} [turn|turned] up in a dig near {place}.",
            "Monasteries [keep|kept] copies of the first manuals for {num} generations.",
            "Families [hand|handed] the skills down from parents to children.",
            "A fire in {year} [destroys|destroyed] most of the oldest workshops.",
            "{group} [bring|brought] new techniques when they [settle|settled] in {place}.",
            "Festivals in {place} still [honour|honoured] the founders each summer.",
        ),
    ),
    "learning": (
        (
            "how long does it take to become good at {topic}",
            "what is the best way for an adult to learn {topic}",
            "which skills does someone need to master {topic}",
            "is {topic} hard to learn without a teacher",
            "where can a beginner take lessons in {topic}",
        ),
        (
            "Apprentices in {place} [train|trained] for about {num} months before working alone.",
            "{person} [runs|ran] an evening course for {group} every winter.",
            "Students [practise|practised] the same basic movement hundreds of times.",
            "A mentor [checks|checked] each piece and [points|pointed] out small faults.",
            "Clubs in {place} [offer|offered] free trial sessions to newcomers.",
            "Handbooks [explain|explained] the steps with drawings of {material}.",
            "Patience [matters|mattered] more than strength for most learners.",
            "Exams [test|tested] both theory and practical work.",
            "Many learners [give|gave] up after the first {num} weeks.",
            "{group} [share|shared] tips with each other at weekly meetings.",
        ),
    ),
    "community": (
        (
            "what kind of community has grown up around {topic}",
            "how do people who practise {topic} meet and organise",
            "which clubs and festivals bring fans of {topic} together",
            "how does {topic} bring neighbours and families together",
            "what role does {topic} play in the life of small towns",
        ),
        (
            "The {place} club [meets|met] on the first Sunday of every month.",
            "{person} [organises|organised] a yearly fair that [draws|drew] {num} visitors.",
            "Members [swap|swapped] {material} and stories over long lunches.",
            "A newsletter [keeps|kept] {group} informed about local events.",
            "Competitions [pit|pitted] villages against each other each autumn.",
            "Volunteers [teach|taught] the basics at the market square in {place}.",
            "Older members [mentor|mentored] newcomers without asking for payment.",
            "Local shops [sponsor|sponsored] prizes for the best work.",
            "Online forums [link|linked] {num} enthusiasts across the region.",
            "Weddings in {place} [feature|featured] displays made by {group}.",
        ),
    ),
    "careers": (
        (
            "can you earn a living from {topic} as a full-time job",
            "what jobs and careers are connected to {topic}",
            "how much do professionals in {topic} typically earn",
            "which qualifications do employers in {topic} look for",
            "what does a normal working day in {topic} look like",
        ),
        (
            "Full-time workers in {place} [earn|earned] about {num} euros a month.",
            "{person} [employs|employed] six assistants in a workshop near the station.",
            "Most jobs [require|required] a certificate from the {place} college.",
            "Orders for {material} [keep|kept] the larger firms busy all year.",
            "Freelancers [sell|sold] their work at markets and through agents.",
            "A typical shift [starts|started] before dawn and [ends|ended] after {num} hours.",
            "Demand from {group} [creates|created] steady work for repairers.",
            "Wages [vary|varied] widely between the city and the countryside.",
            "Promotion [depends|depended] on years of service rather than skill.",
            "Exports to {place} [bring|brought] in most of the income.",
        ),
    ),
}

FILLERS = {
    "place": (
        "Ardmore",
        "Belvale",
        "Corrin",
        "Dunmere",
        "Eskdale",
        "Farrow",
        "Glenholm",
        "Harwick",
        "Islay",
        "Jarrow",
        "Kestwick",
        "Lindos",
        "Marlow",
        "Norwick",
        "Ostrava",
        "Penrith",
        "Quillan",
        "Rosslyn",
        "Saltash",
        "Tavira",
        "Ulverton",
        "Varenna",
        "Whitby",
        "Yarrow",
        "Zell",
        "Aberfeldy",
        "Bruges",
        "Cortona",
        "Delft",
        "Evora",
        "Fermoy",
        "Girona",
        "Hallstatt",
        "Ilkley",
        "Kinsale",
        "Lucca",
    ),
    "person": (
        "Marta Okafor",
        "Jonas Lindqvist",
        "Priya Raman",
        "Tomasz Nowak",
        "Aiko Tanaka",
        "Samuel Adeyemi",
        "Elena Petrova",
        "Diego Alvarez",
        "Fatima Haddad",
        "Liam O'Connell",
        "Ingrid Solberg",
        "Kwame Mensah",
        "Chiara Romano",
        "Hugo Lefevre",
        "Nadia Karimi",
        "Oskar Brandt",
        "Yara Costa",
        "Mateo Rossi",
        "Helga Strom",
        "Ravi Menon",
        "Sofia Novak",
        "Emil Varga",
        "Amara Diallo",
        "Lucas Moreau",
    ),
    "material": (
        "oak",
        "copper",
        "clay",
        "beeswax",
        "linen",
        "iron",
        "willow",
        "silver",
        "hemp",
        "granite",
        "cotton",
        "brass",
        "bamboo",
        "flax",
        "pine resin",
        "tin",
        "wool",
        "cork",
        "limestone",
        "walnut",
    ),
    "group": (
        "retired teachers",
        "local farmers",
        "university students",
        "young families",
        "factory workers",
        "fishermen",
        "nurses",
        "shopkeepers",
        "engineers",
        "volunteers",
        "pensioners",
        "craft dealers",
    ),
}

TENSE_SLOT = re.compile(r"\[([^|\]]+)\|([^\]]+)\]")

# attribute -> per value: sentence variants (all share the passage's filler slots)
AUDIENCE = {
    "opening": (
        (
            "Hey there, little explorer, get ready for a fun story!",
            "Guess what, kids? This is one of the coolest things ever!",
            "Boys and girls, grab your crayons, because here comes a great tale!",
            "Are you ready, young friends? Let's go on a little adventure!",
        ),
        (
            "This technical summary draws on field surveys and archival data.",
            "The following overview is intended for practitioners and researchers.",
            "This briefing consolidates findings from peer-reviewed studies and trade audits.",
            "The analysis below assumes familiarity with standard methods in the discipline.",
        ),
    ),
    "aside": (
        (
            "Isn't that amazing? You could try drawing it with your friends!",
            "Wow, imagine doing that in your own backyard!",
            "That sounds a bit like a puzzle game, doesn't it?",
            "Can you count how many steps that is? Try it on your fingers!",
        ),
        (
            "Sample sizes remain small, so these estimates carry wide confidence intervals.",
            "Methodological differences between surveys limit direct comparison of these figures.",
            "Regression estimates control for region, season and operator experience.",
            "The underlying datasets are documented in the appendix of the regional report.",
        ),
    ),
    "closing": (
        (
            "So next time you see it, give a big smile and wave hello!",
            "Now you know a super secret, so go and tell your mum and dad!",
            "The end! Wasn't that a fun thing to learn about today?",
            "Remember, every grown-up expert started out as a curious kid like you!",
        ),
        (
            "Further work should quantify these effects with longitudinal data.",
            "Practitioners are advised to consult the cited standards before applying these figures.",
            "These observations should be validated against independent measurements.",
            "Open questions concern the transferability of these results to other regions.",
        ),
    ),
}
PERIOD_FRAMES = (
    (
        "Back in the eighteen hundreds, when candles lit most homes and news travelled by horse, {topic} "
        "looked very different.",
        "In the age of steam engines and gas lamps, {topic} was part of everyday life in {place}.",
        "Long before motorcars, telephones or electric light, {topic} was already known in {place}.",
        "In the days of horse-drawn carts and village blacksmiths, {topic} followed the rhythm of the seasons.",
    ),
    (
        "Today, with smartphones in every pocket and online shops delivering overnight, {topic} has changed "
        "a great deal.",
        "In the current era of electric cars and video calls, {topic} is organised quite differently in "
        "{place}.",
        "Now that satellites track the weather and apps book every lesson, {topic} is easy to find in {place}.",
        "These days, with social media and cheap flights, {topic} reaches people far beyond {place}.",
    ),
)
STANCE = (
    (
        "It is a wonderful tradition that brings real joy to the people involved.",
        "Visitors praise it warmly, and many call it a model worth copying.",
        "The results are impressive, and the whole effort deserves admiration.",
        "Everyone who takes part seems delighted, and the benefits are obvious.",
        "It is a genuine success story that makes the region proud.",
        "Its fans say it is the best thing to happen to the area in years.",
    ),
    (
        "Sadly, it remains a source of constant complaints and wasted effort.",
        "Critics describe it as a failure that nobody wants to admit.",
        "The results are disappointing, and the whole effort seems badly managed.",
        "Many who take part end up frustrated, and the drawbacks are obvious.",
        "It is a troubling story that leaves the region embarrassed.",
        "Its opponents say it is the worst thing to happen to the area in years.",
    ),
)
CONNECTIVES = ("Moreover,", "In addition,", "At the same time,", "Also,", "Beyond that,", "Meanwhile,")

# training instruction wordings: a context naming the topic, then a constraint per (attribute, value)
TRAIN_CONTEXTS = (
    "I am preparing a talk about {topic} for my neighbourhood association.",
    "My cousin just got curious about {topic} and asked me to look into it.",
    "We are putting together a newsletter issue on {topic}.",
    "I have to write a short report about {topic} this week.",
    "Our town is debating whether to support {topic} with public money.",
    "For a museum exhibit on {topic}, I need background reading.",
    "I am comparing sources about {topic} for a review article.",
    "A friend who sells supplies for {topic} asked me for reading material.",
    "I am planning a weekend trip centred on {topic}.",
    "My book group chose {topic} as this month's theme.",
    "I am building a lesson plan around {topic}.",
    "We are making a short documentary about {topic}.",
)
HELDOUT_CONTEXTS = (
    "Someone on my team wants to know more about {topic}.",
    "I am drafting a grant proposal that touches on {topic}.",
    "For a podcast episode about {topic}, I am gathering sources.",
    "My parents keep asking me about {topic}.",
)
TRAIN_CONSTRAINTS = {
    "audience": (
        (
            "Only show me something a young child would understand.",
            "It has to suit an elementary school class.",
            "The reading level should fit a seven-year-old.",
            "Pick writing addressed to small kids.",
            "It should be meant for a children's magazine.",
            "I need material that a primary pupil could follow.",
        ),
        (
            "Only show me something written for professionals.",
            "It has to suit a graduate seminar.",
            "The reading level should fit a trained specialist.",
            "Pick writing addressed to academics.",
            "It should be meant for a scholarly journal.",
            "I need material that an industry expert would consult.",
        ),
    ),
    "period": (
        (
            "Focus on how things used to be long ago.",
            "It must describe an earlier historical period.",
            "I only care about the situation in past centuries.",
            "Prefer accounts of bygone times.",
            "Stick to how it was in former generations.",
            "I want the picture from a previous century.",
        ),
        (
            "Focus on how things stand at the present time.",
            "It must describe the current state of affairs.",
            "I only care about the situation nowadays.",
            "Prefer accounts of the contemporary situation.",
            "Stick to how it is in the modern world.",
            "I want the picture from the present decade.",
        ),
    ),
    "stance": (
        (
            "The text should take a favourable view.",
            "I want an optimistic, approving tone.",
            "Pick writing that speaks well of it.",
            "Choose an enthusiastic account.",
            "It should leave a positive impression.",
            "Find a supportive, upbeat piece.",
        ),
        (
            "The text should take a disapproving view.",
            "I want a skeptical, negative tone.",
            "Pick writing that speaks badly of it.",
            "Choose a pessimistic account.",
            "It should leave a negative impression.",
            "Find a hostile, downbeat piece.",
        ),
    ),
    "format": (
        (
            "Present the answer as enumerated items.",
            "I want a numbered breakdown.",
            "Give me an itemised rundown.",
            "Structure it as a checklist.",
            "It should be laid out point by point.",
            "Organise it as a sequence of entries.",
        ),
        (
            "Present the answer as a flowing paragraph.",
            "I want a continuous narrative.",
            "Give me connected sentences in one block.",
            "Structure it as an essay-like passage.",
            "It should read as unbroken text.",
            "Organise it as a single narrative piece.",
        ),
    ),
}

BODY_SENTENCES = 5  # per passage, out of the aspect's 10


def _fill(template: str, period: int, fillers: dict[str, str]) -> str:
    text = TENSE_SLOT.sub(lambda m: m.group(2 - period), template)
    return text.format(**fillers)


def choices(rng: random.Random) -> dict:
    """The template choices of one passage (so two passages can differ in exactly one attribute)."""
    return {
        "body": rng.sample(range(10), BODY_SENTENCES),
        "fill": rng.randrange(1 << 30),
        **{key: rng.randrange(12) for key in ("opening", "aside", "closing", "frame", "stance", "link")},
    }


def fillers(seed: int, topic: str) -> dict[str, str]:
    rng = random.Random(seed)
    return {
        "topic": topic,
        **{slot: rng.choice(options) for slot, options in FILLERS.items()},
        "num": str(rng.choice((3, 4, 6, 8, 12, 15, 20, 25, 40, 60, 90, 120, 250, 400, 1500))),
        "year": str(rng.randrange(1420, 1890)),
    }


def passage(picked: dict, topic: str, aspect: str, values: dict[str, int]) -> str:
    """One passage (see the module docstring for where each attribute shows)."""
    period, audience = values["period"], values["audience"]
    slots = fillers(picked["fill"], topic)
    body = [_fill(ASPECTS[aspect][1][b], period, slots) for b in picked["body"]]
    stances = STANCE[values["stance"]]
    first, second = stances[picked["stance"] % 6], stances[(picked["stance"] + 1) % 6]
    if values["format"] == 0:
        core = " ".join(f"{number}. {sentence}" for number, sentence in enumerate(body, 1))
    else:
        link = picked["link"]
        core = " ".join(
            sentence if n % 2 == 0 else f"{CONNECTIVES[(link + n) % 6]} {sentence[0].lower()}{sentence[1:]}"
            for n, sentence in enumerate(body)
        )
    parts = (
        AUDIENCE["opening"][audience][picked["opening"] % 4],
        PERIOD_FRAMES[period][picked["frame"] % 4].format(**slots),
        first,
        core,
        AUDIENCE["aside"][audience][picked["aside"] % 4],
        second,
        AUDIENCE["closing"][audience][picked["closing"] % 4],
    )
    return " ".join(parts)


def query(rng: random.Random, topic: str, aspect: str) -> str:
    return rng.choice(ASPECTS[aspect][0]).format(topic=topic)


def instructions(rng: random.Random, topic: str, attribute: str) -> tuple[str, str]:
    """A training (value 0, value 1) instruction pair: the same topic context, parallel constraint wording."""
    context = rng.choice(TRAIN_CONTEXTS).format(topic=topic)
    index = rng.randrange(6)
    return tuple(f"{context} {TRAIN_CONSTRAINTS[attribute][v][index]}" for v in (0, 1))


def heldout_context(rng: random.Random, topic: str) -> str:
    return rng.choice(HELDOUT_CONTEXTS).format(topic=topic)
