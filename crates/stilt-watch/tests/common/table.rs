//! Loader for tests/data/dockerignore_table.txt (see the file's header).

pub struct Case {
    pub name: String,
    /// The lines of the .dockerignore file, verbatim.
    pub lines: Vec<String>,
    /// (path, expected_ignored)
    pub paths: Vec<(String, bool)>,
}

impl Case {
    pub fn dockerignore_text(&self) -> String {
        let mut s = self.lines.join("\n");
        s.push('\n');
        s
    }
}

pub fn load() -> Vec<Case> {
    let text = include_str!("../data/dockerignore_table.txt");
    let mut cases: Vec<Case> = Vec::new();
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("== ") {
            cases.push(Case {
                name: name.to_string(),
                lines: Vec::new(),
                paths: Vec::new(),
            });
            continue;
        }
        let Some(case) = cases.last_mut() else {
            continue;
        };
        if line == "p" {
            case.lines.push(String::new());
        } else if let Some(p) = line.strip_prefix("p ") {
            case.lines.push(p.to_string());
        } else if let Some(p) = line.strip_prefix("- ") {
            case.paths.push((p.to_string(), true));
        } else if let Some(p) = line.strip_prefix("+ ") {
            case.paths.push((p.to_string(), false));
        }
    }
    cases
}
