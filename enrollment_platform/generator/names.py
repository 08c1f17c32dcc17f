"""Vocabulary for the raw-data generator: names, places, departments, courses and note sentences.

Every value is title-case stable (``v == v.title()`` where it is a name, city or department) and holds no
comma, quote or line break, so the CSV writer never needs to quote and standardization (trim + case) always
gives back the value written here.
"""

from __future__ import annotations


def _words(text: str) -> list[str]:
    return text.split()


FIRST_NAMES_MALE = _words(
    """
Aaron Adam Adrian Aiden Alan Albert Alex Alexander Andre Andrew Angel Anthony Antonio Arthur Austin Benjamin
Bernard Blake Bradley Brandon Brendan Brian Bruce Bryan Caleb Calvin Cameron Carl Carlos Carter Chad Charles
Chase Christian Christopher Clarence Cody Colin Connor Craig Curtis Dale Damian Daniel Darius Darren David
Dean Dennis Derek Devin Diego Dominic Donald Douglas Dustin Dylan Edward Eli Elijah Elliot Emmanuel Eric
Ethan Eugene Evan Felix Fernando Francis Frank Gabriel Gavin George Gerald Gordon Grant Gregory Hamza Harold
Harrison Hector Henry Hugo Ian Isaac Ivan Jack Jacob Jake Jamal James Jason Javier Jeffrey Jeremy Jerome
Jesse Joel John Jonathan Jordan Jorge Jose Joseph Joshua Juan Julian Justin Kai Keith Kenneth Kevin Kyle
Lamar Lance Larry Lawrence Leo Leon Liam Logan Louis Lucas Luis Malik Manuel Marcus Mario Mark Martin Mason
Mateo Matthew Max Michael Miguel Mohammed Nathan Neil Nicholas Noah Oliver Omar Oscar Owen Patrick Paul
Peter Philip Rafael Ramon Raymond Ricardo Richard Riley Robert Roger Roman Ronald Ruben Russell Ryan Samuel
Scott Sean Sebastian Sergio Seth Shane Simon Spencer Stephen Steven Theodore Thomas Timothy Travis Trevor
Tyler Victor Vincent Walter Wayne Wesley William Xavier Zachary
"""
)

FIRST_NAMES_FEMALE = _words(
    """
Abigail Ada Adriana Aisha Alexa Alice Alicia Allison Alyssa Amanda Amber Amelia Amy Ana Andrea Angela Anna
Ariana Ashley Audrey Ava Barbara Beatrice Bella Beth Brenda Brianna Brooke Camila Carla Carmen Caroline
Cassandra Catherine Charlotte Chloe Christina Claire Clara Courtney Crystal Daisy Dana Daniela Deborah
Denise Diana Diane Dorothy Eleanor Elena Elizabeth Ella Ellen Emily Emma Erica Erin Esther Eva Evelyn Fatima
Fiona Florence Gabriela Gloria Grace Hailey Hannah Harper Hazel Heather Helen Holly Imani Irene Isabel
Isabella Ivy Jacqueline Jade Jamie Jane Janet Jasmine Jennifer Jessica Jill Joan Jocelyn Julia Julie
Kaitlyn Karen Kate Katherine Kayla Kelly Kimberly Laura Lauren Layla Leah Lillian Lily Linda Lisa Lucia
Lucy Luna Lydia Madison Maria Marie Marilyn Martha Maya Megan Melanie Melissa Mia Michelle Mila Miranda
Molly Monica Nadia Naomi Natalie Nicole Nina Nora Olivia Paige Pamela Patricia Paula Penelope Priya Rachel
Rebecca Regina Rita Rosa Rose Ruby Ruth Sabrina Samantha Sandra Sara Sarah Savannah Scarlett Serena Sharon
Sofia Sophia Stella Stephanie Susan Sydney Tamara Tanya Teresa Tiffany Valeria Vanessa Veronica Victoria
Violet Vivian Wendy Yasmin Yolanda Zoe
"""
)

LAST_NAMES = _words(
    """
Abbott Acosta Adams Aguilar Ahmed Alexander Ali Allen Alvarez Anderson Andrews Armstrong Arnold Austin
Bailey Baker Banks Barker Barnes Barrett Bates Bell Bennett Berry Bishop Black Blair Boyd Bradley Brooks
Brown Bryant Burke Burns Butler Byrd Caldwell Campbell Cano Carlson Carpenter Carr Carroll Carter Castillo
Castro Chan Chang Chapman Chavez Chen Cho Clark Cohen Cole Coleman Collins Contreras Cook Cooper Cortez
Cox Crawford Cruz Cunningham Daniels Davidson Davis Dawson Dean Delgado Diaz Dixon Douglas Duncan Dunn
Edwards Elliott Ellis Evans Farmer Ferguson Fernandez Fischer Fisher Fleming Fletcher Flores Ford Foster
Fowler Fox Francis Franklin Freeman Fuller Garcia Gardner Garza George Gibson Gilbert Gomez Gonzales
Gonzalez Goodman Gordon Graham Grant Gray Green Greene Griffin Gupta Gutierrez Hall Hamilton Hansen Hanson
Harper Harris Harrison Hart Harvey Hawkins Hayes Henderson Henry Hernandez Herrera Hicks Hill Hoffman
Holland Holmes Hopkins Howard Howell Hudson Hughes Hunt Hunter Ibrahim Jackson Jacobs James Jensen Jimenez
Johnson Johnston Jones Jordan Joseph Kaur Keller Kelly Kennedy Khan Kim King Klein Knight Kumar Lane
Lambert Larson Lawrence Lawson Lee Lewis Lin Little Liu Long Lopez Lucas Lynch Malik Marshall Martin
Martinez Mason Matthews Medina Mendez Mendoza Meyer Miller Mills Mitchell Molina Montgomery Moore Morales
Moreno Morgan Morris Murphy Murray Myers Nair Nelson Nguyen Nichols Nunez Olson Ortiz Owens Palmer Park
Parker Patel Patterson Payne Pearson Perez Perkins Perry Peters Peterson Phillips Pierce Porter Powell
Price Ramirez Ramos Reed Reid Reyes Reynolds Rice Richards Richardson Riley Rivera Roberts Robertson
Robinson Rodriguez Rogers Romero Rose Ross Ruiz Russell Ryan Salazar Sanchez Sanders Santiago Santos
Schmidt Schneider Scott Shah Shapiro Sharma Shaw Silva Simmons Simpson Singh Smith Snyder Soto Spencer
Stanley Stephens Stevens Stewart Stone Sullivan Sutton Tan Taylor Thomas Thompson Torres Tran Tucker
Turner Vargas Vasquez Wagner Walker Wallace Walsh Wang Ward Warren Washington Watson Weaver Webb Wells
West Wheeler White Williams Willis Wilson Wong Woods Wright Wu Yang Young Zhang Zimmerman
"""
)

# (city, state, first three digits of its ZIP codes); some start with 0, so postal codes must be read as text.
CITIES = [
    ("New York", "NY", "100"),
    ("Brooklyn", "NY", "112"),
    ("Buffalo", "NY", "142"),
    ("Los Angeles", "CA", "900"),
    ("San Diego", "CA", "921"),
    ("San Francisco", "CA", "941"),
    ("Sacramento", "CA", "958"),
    ("Chicago", "IL", "606"),
    ("Springfield", "IL", "627"),
    ("Houston", "TX", "770"),
    ("Dallas", "TX", "752"),
    ("Austin", "TX", "787"),
    ("San Antonio", "TX", "782"),
    ("Phoenix", "AZ", "850"),
    ("Tucson", "AZ", "857"),
    ("Philadelphia", "PA", "191"),
    ("Pittsburgh", "PA", "152"),
    ("Jacksonville", "FL", "322"),
    ("Miami", "FL", "331"),
    ("Tampa", "FL", "336"),
    ("Orlando", "FL", "328"),
    ("Columbus", "OH", "432"),
    ("Cleveland", "OH", "441"),
    ("Indianapolis", "IN", "462"),
    ("Charlotte", "NC", "282"),
    ("Raleigh", "NC", "276"),
    ("Seattle", "WA", "981"),
    ("Spokane", "WA", "992"),
    ("Denver", "CO", "802"),
    ("Boulder", "CO", "803"),
    ("Boston", "MA", "021"),
    ("Cambridge", "MA", "021"),
    ("Worcester", "MA", "016"),
    ("Providence", "RI", "029"),
    ("Hartford", "CT", "061"),
    ("New Haven", "CT", "065"),
    ("Newark", "NJ", "071"),
    ("Princeton", "NJ", "085"),
    ("Burlington", "VT", "054"),
    ("Portland", "OR", "972"),
    ("Eugene", "OR", "974"),
    ("Nashville", "TN", "372"),
    ("Memphis", "TN", "381"),
    ("Detroit", "MI", "482"),
    ("Ann Arbor", "MI", "481"),
    ("Baltimore", "MD", "212"),
    ("Milwaukee", "WI", "532"),
    ("Madison", "WI", "537"),
    ("Minneapolis", "MN", "554"),
    ("Atlanta", "GA", "303"),
    ("Savannah", "GA", "314"),
    ("Kansas City", "MO", "641"),
    ("Saint Louis", "MO", "631"),
    ("Omaha", "NE", "681"),
    ("Las Vegas", "NV", "891"),
    ("Albuquerque", "NM", "871"),
    ("Salt Lake City", "UT", "841"),
    ("Boise", "ID", "837"),
    ("Richmond", "VA", "232"),
    ("Louisville", "KY", "402"),
    ("New Orleans", "LA", "701"),
    ("Birmingham", "AL", "352"),
    ("Honolulu", "HI", "968"),
    ("Anchorage", "AK", "995"),
]

STREET_NAMES = _words(
    """
Main Oak Pine Maple Cedar Elm Washington Lake Hill Park Walnut Sunset Lincoln Jackson Highland Church River
Willow Meadow Forest Spring Ridge Chestnut Madison Franklin Jefferson Adams Cherry Birch Valley Center
College University Prospect Union Grove Mill Orchard Broad Market Water Liberty Summit Harbor Garden
"""
)
STREET_SUFFIXES = ["St", "Ave", "Rd", "Blvd", "Ln", "Dr", "Ct", "Way", "Pl", "Ter"]

# Departments double as student majors. Title-case stable: no "and"/"of" that title() would capitalize.
DEPARTMENTS = [
    "Computer Science",
    "Mathematics",
    "Physics",
    "Chemistry",
    "Biology",
    "Business",
    "Economics",
    "Psychology",
    "History",
    "English Literature",
    "Political Science",
    "Mechanical Engineering",
    "Electrical Engineering",
    "Civil Engineering",
    "Nursing",
    "Sociology",
    "Philosophy",
    "Art History",
    "Music",
    "Environmental Science",
    "Statistics",
    "Data Science",
    "Finance",
    "Accounting",
]

# Course titles and instructor specializations per department (same order as DEPARTMENTS).
COURSE_TITLES = {
    "Computer Science": [
        "Introduction to Programming",
        "Data Structures",
        "Algorithms",
        "Operating Systems",
        "Computer Networks",
        "Database Systems",
        "Machine Learning",
        "Software Engineering",
        "Computer Architecture",
        "Distributed Systems",
    ],
    "Mathematics": [
        "Calculus I",
        "Calculus II",
        "Linear Algebra",
        "Differential Equations",
        "Abstract Algebra",
        "Real Analysis",
        "Discrete Mathematics",
        "Number Theory",
        "Topology",
    ],
    "Physics": [
        "General Physics I",
        "General Physics II",
        "Classical Mechanics",
        "Electromagnetism",
        "Quantum Mechanics",
        "Thermodynamics",
        "Optics",
        "Astrophysics",
    ],
    "Chemistry": [
        "General Chemistry",
        "Organic Chemistry I",
        "Organic Chemistry II",
        "Physical Chemistry",
        "Analytical Chemistry",
        "Biochemistry",
        "Inorganic Chemistry",
    ],
    "Biology": [
        "Principles of Biology",
        "Cell Biology",
        "Genetics",
        "Microbiology",
        "Ecology",
        "Evolutionary Biology",
        "Molecular Biology",
        "Human Anatomy",
    ],
    "Business": [
        "Principles of Management",
        "Marketing Fundamentals",
        "Business Law",
        "Operations Management",
        "Entrepreneurship",
        "Business Strategy",
        "Organizational Behavior",
    ],
    "Economics": [
        "Microeconomics",
        "Macroeconomics",
        "Econometrics",
        "Game Theory",
        "International Trade",
        "Labor Economics",
        "Public Finance",
    ],
    "Psychology": [
        "Introduction to Psychology",
        "Developmental Psychology",
        "Cognitive Psychology",
        "Social Psychology",
        "Abnormal Psychology",
        "Research Methods in Psychology",
    ],
    "History": [
        "World History",
        "American History",
        "Medieval Europe",
        "Modern East Asia",
        "History of Science",
        "The Cold War",
    ],
    "English Literature": [
        "Composition",
        "Shakespeare",
        "American Literature",
        "British Romanticism",
        "Creative Writing",
        "Literary Theory",
    ],
    "Political Science": [
        "American Government",
        "Comparative Politics",
        "International Relations",
        "Political Theory",
        "Public Policy",
    ],
    "Mechanical Engineering": [
        "Statics",
        "Dynamics",
        "Fluid Mechanics",
        "Heat Transfer",
        "Machine Design",
        "Materials Science",
    ],
    "Electrical Engineering": [
        "Circuit Analysis",
        "Signals and Systems",
        "Digital Logic",
        "Electronics",
        "Control Systems",
        "Power Systems",
    ],
    "Civil Engineering": [
        "Structural Analysis",
        "Geotechnical Engineering",
        "Transportation Engineering",
        "Hydraulics",
        "Construction Management",
    ],
    "Nursing": [
        "Foundations of Nursing",
        "Pharmacology",
        "Pathophysiology",
        "Community Health",
        "Pediatric Nursing",
    ],
    "Sociology": [
        "Introduction to Sociology",
        "Social Inequality",
        "Urban Sociology",
        "Sociology of Education",
        "Criminology",
    ],
    "Philosophy": ["Logic", "Ethics", "Philosophy of Mind", "Epistemology", "Metaphysics"],
    "Art History": ["Ancient Art", "Renaissance Art", "Modern Art", "Art of the Americas"],
    "Music": ["Music Theory", "Music History", "Ear Training", "Composition for Ensembles"],
    "Environmental Science": [
        "Environmental Systems",
        "Climate Science",
        "Conservation Biology",
        "Environmental Policy",
    ],
    "Statistics": [
        "Introduction to Statistics",
        "Probability",
        "Regression Analysis",
        "Bayesian Statistics",
        "Time Series Analysis",
    ],
    "Data Science": [
        "Data Wrangling",
        "Data Visualization",
        "Statistical Learning",
        "Big Data Systems",
        "Data Ethics",
    ],
    "Finance": ["Corporate Finance", "Investments", "Financial Markets", "Risk Management", "Derivatives"],
    "Accounting": [
        "Financial Accounting",
        "Managerial Accounting",
        "Auditing",
        "Taxation",
        "Cost Accounting",
    ],
}

SPECIALIZATIONS = {
    "Computer Science": ["Machine Learning", "Systems", "Databases", "Security", "Theory"],
    "Mathematics": ["Algebra", "Analysis", "Topology", "Combinatorics"],
    "Physics": ["Condensed Matter", "Particle Physics", "Astrophysics", "Optics"],
    "Chemistry": ["Organic Synthesis", "Physical Chemistry", "Biochemistry"],
    "Biology": ["Genetics", "Ecology", "Molecular Biology", "Neuroscience"],
    "Business": ["Marketing Strategy", "Operations", "Entrepreneurship", "Management"],
    "Economics": ["Econometrics", "Macroeconomics", "Development Economics", "Behavioral Economics"],
    "Psychology": ["Cognitive Science", "Clinical Psychology", "Social Psychology"],
    "History": ["Modern History", "Ancient History", "Economic History"],
    "English Literature": ["Poetry", "Victorian Literature", "Rhetoric"],
    "Political Science": ["International Relations", "Comparative Politics", "Public Policy"],
    "Mechanical Engineering": ["Thermodynamics", "Robotics", "Materials"],
    "Electrical Engineering": ["Signal Processing", "Power Electronics", "Embedded Systems"],
    "Civil Engineering": ["Structures", "Transportation", "Water Resources"],
    "Nursing": ["Critical Care", "Pediatrics", "Public Health"],
    "Sociology": ["Demography", "Social Networks", "Urban Studies"],
    "Philosophy": ["Ethics", "Logic", "Philosophy of Science"],
    "Art History": ["Renaissance", "Contemporary Art", "Architecture"],
    "Music": ["Composition", "Performance", "Musicology"],
    "Environmental Science": ["Climate Modeling", "Conservation", "Hydrology"],
    "Statistics": ["Bayesian Methods", "Biostatistics", "Survey Methods"],
    "Data Science": ["Deep Learning", "Data Engineering", "Visualization"],
    "Finance": ["Asset Pricing", "Corporate Finance", "Risk Management"],
    "Accounting": ["Auditing", "Taxation", "Forensic Accounting"],
}

COURSE_TITLE_SUFFIXES = ["", "", "", "", " Seminar", " Lab", " Honors"]

EMAIL_DOMAINS_STUDENT = ["example.edu", "student.example.edu", "mail.example.com", "example.org"]
EMAIL_DOMAIN_FACULTY = "faculty.example.edu"
AREA_CODES = [
    201, 202, 206, 212, 213, 214, 215, 216, 303, 305, 310, 312, 313, 314, 404, 408, 412, 415, 503, 512,
    555, 602, 608, 612, 614, 617, 702, 713, 718, 720, 773, 801, 808, 813, 818, 860, 901, 907, 916, 919,
]  # fmt: skip

GENDERS = ["M", "F", "X"]
STATUSES = ["enrolled", "completed", "withdrawn"]
PAYMENT_STATUSES = ["Paid", "Pending", "Overdue"]

# Notes without PII (no digits, so no date/phone detector can fire on them).
STUDENT_NOTES = [
    "Requested official transcript",
    "Prefers morning sections",
    "Transferred from community college",
    "Scholarship recipient",
    "Needs accessibility accommodations",
    "On academic probation",
    "Dean's list",
    "Changed major after advising session",
    "Commutes from out of town",
    "International student",
]
ENROLLMENT_NOTES = [
    "Late add approved by advisor",
    "Instructor permission granted",
    "Payment plan on file",
    "Audit only",
    "Waitlisted initially",
    "Prerequisite waived",
    "Incomplete grade pending final project",
    "Repeating the course",
    "Registered through continuing education",
]

# Notes with PII: (prefix, kind, suffix); kind is "phone", "ssn" or "email".
PII_NOTES = [
    ("Student asked to update phone to ", "phone", ""),
    ("Called back on ", "phone", " about financial aid"),
    ("SSN on file ", "ssn", " verified"),
    ("Verified identity with SSN ", "ssn", ""),
    ("contact at ", "email", ""),
    ("Forward grade report to ", "email", " per request"),
]
