//! What one section of `report.html` shows, independent of where the numbers come from (a run's
//! summary, the data of `report.json`; or a delta file read afterwards): header facts, text,
//! and the parts of the delta, each with a place in the treemap's tree, an encoding and its
//! bytes.

use generate::plan::{
    HOW_BSDIFF, HOW_EXE, HOW_GZIP, HOW_GZIP_NEW, HOW_NEW, HOW_NEW_X86, HOW_ZSTD_BASIS,
};

/// How a part of the delta was encoded: the treemap's colours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Encoding {
    /// The delta's own structure: recipes (among them those naming reused source data), item
    /// hashes, headers.
    Structure,
    ZstdOld,
    Bsdiff,
    Gzip,
    New,
    X86,
    /// Anything else (a delta page's blobs consumed by other recipes, nested archives).
    Other,
}

impl Encoding {
    pub const ALL: [Encoding; 7] = [
        Encoding::Structure,
        Encoding::ZstdOld,
        Encoding::Bsdiff,
        Encoding::Gzip,
        Encoding::New,
        Encoding::X86,
        Encoding::Other,
    ];

    /// From an encoding as `report.json` names it (`how`).
    pub fn from_how(how: &str) -> Encoding {
        match how {
            HOW_ZSTD_BASIS => Encoding::ZstdOld,
            HOW_BSDIFF | HOW_EXE => Encoding::Bsdiff,
            HOW_GZIP | HOW_GZIP_NEW => Encoding::Gzip,
            HOW_NEW => Encoding::New,
            HOW_NEW_X86 => Encoding::X86,
            _ => Encoding::Other,
        }
    }

    /// Short name (legend, table).
    pub fn label(self) -> &'static str {
        match self {
            Encoding::Structure => "reused: recipes & headers",
            Encoding::ZstdOld => "zstd against old version",
            Encoding::Bsdiff => "patch (bsdiff, executable)",
            Encoding::Gzip => "gzip re-created from text",
            Encoding::New => "new data",
            Encoding::X86 => "new data, x86 filter",
            Encoding::Other => "other",
        }
    }

    /// Fill colour (Okabe and Ito's palette, told apart with colour-blindness too) and whether
    /// text on it is dark.
    pub fn colour(self) -> (&'static str, bool) {
        match self {
            Encoding::Structure => ("#a8a8a8", true),
            Encoding::ZstdOld => ("#0072b2", false),
            Encoding::Bsdiff => ("#e69f00", true),
            Encoding::Gzip => ("#009e73", false),
            Encoding::New => ("#d55e00", false),
            Encoding::X86 => ("#cc79a7", true),
            Encoding::Other => ("#f0e442", true),
        }
    }

    /// CSS class of its colour.
    pub fn class(self) -> &'static str {
        match self {
            Encoding::Structure => "e0",
            Encoding::ZstdOld => "e1",
            Encoding::Bsdiff => "e2",
            Encoding::Gzip => "e3",
            Encoding::New => "e4",
            Encoding::X86 => "e5",
            Encoding::Other => "e6",
        }
    }
}

/// One part of the delta: a tile of the treemap and a row of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leaf {
    /// The groups it is in, outermost first (image, directory), for the treemap.
    pub group: Vec<String>,
    /// Where it is (the target member, or the part of the delta file).
    pub place: String,
    /// What it is (a file's path, "filesystem metadata", ...).
    pub name: String,
    pub encoding: Encoding,
    /// The encoding as the data names it (shown in tooltips and the table).
    pub how: String,
    /// Bytes it stands for before encoding (changed target bytes, or bytes a blob makes).
    pub changed: Option<u64>,
    pub delta: u64,
}

/// One section of the page: one delta.
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub title: String,
    /// Header rows: label and value; the value's raw number, if any, goes into the DOM as
    /// `data-bytes` (tests and scripts read it).
    pub facts: Vec<Fact>,
    /// Sentences that help act on the numbers.
    pub insights: Vec<String>,
    /// What the treemap's area stands for: the delta's size.
    pub total: u64,
    /// Every part, most expensive first.
    pub leaves: Vec<Leaf>,
    /// Column heading for [`Leaf::changed`].
    pub changed_heading: &'static str,
    /// What this page cannot show.
    pub caveats: Vec<String>,
}

/// A header row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fact {
    pub label: &'static str,
    pub value: String,
    pub bytes: Option<u64>,
}

impl Fact {
    pub fn text(label: &'static str, value: impl Into<String>) -> Fact {
        Fact {
            label,
            value: value.into(),
            bytes: None,
        }
    }

    pub fn bytes(label: &'static str, bytes: u64, value: impl Into<String>) -> Fact {
        Fact {
            label,
            value: value.into(),
            bytes: Some(bytes),
        }
    }
}

/// `1234567` as `1,234,567`.
pub fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `n` and the noun for it: `1 file`, `2,000 files`.
pub fn count(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", grouped(n), if n == 1 { one } else { many })
}

/// A size for people: bytes, KiB, MiB or GiB with three significant digits.
pub fn human(n: u64) -> String {
    const UNITS: [&str; 4] = ["bytes", "KiB", "MiB", "GiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    match unit {
        0 => format!("{n} bytes"),
        _ if v < 10.0 => format!("{v:.2} {}", UNITS[unit]),
        _ if v < 100.0 => format!("{v:.1} {}", UNITS[unit]),
        _ => format!("{v:.0} {}", UNITS[unit]),
    }
}

/// `part` as a percentage of `whole`, for text ("12 %", "0.4 %", "< 0.1 %").
pub fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "0 %".into();
    }
    let p = part as f64 * 100.0 / whole as f64;
    if p >= 10.0 {
        format!("{p:.0} %")
    } else if p >= 0.1 {
        format!("{p:.1} %")
    } else if part > 0 {
        "< 0.1 %".into()
    } else {
        "0 %".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_for_people() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
        assert_eq!(grouped(497_073), "497,073");
        assert_eq!(grouped(1_234_567), "1,234,567");
        assert_eq!(count(1, "file", "files"), "1 file");
        assert_eq!(count(2000, "file", "files"), "2,000 files");
        assert_eq!(human(512), "512 bytes");
        assert_eq!(human(497_073), "485 KiB");
        assert_eq!(human(5 << 20), "5.00 MiB");
        assert_eq!(percent(32, 100), "32 %");
        assert_eq!(percent(1, 300), "0.3 %");
        assert_eq!(percent(1, 100_000), "< 0.1 %");
    }

    /// Every encoding `report.json` names has its own colour.
    #[test]
    fn every_how_has_an_encoding() {
        for how in [
            HOW_NEW,
            HOW_ZSTD_BASIS,
            HOW_GZIP,
            HOW_GZIP_NEW,
            HOW_BSDIFF,
            HOW_EXE,
            HOW_NEW_X86,
        ] {
            assert_ne!(Encoding::from_how(how), Encoding::Other, "{how}");
        }
    }
}
