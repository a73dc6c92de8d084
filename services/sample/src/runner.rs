//! `ROLE=runner`: csv-analyst's runner image, one-shot. Reads `RUN_ID` and
//! `RUN_INPUT` (a CSV text with a header row; or the arguments `RUN_ID [INPUT]`),
//! prints one JSON line and exits 0, or prints a JSON error line and exits 1.

use serde_json::{json, Map, Value};

/// What the runner computes from a CSV text: data rows, columns, and the sum of every
/// column whose values are all numbers.
#[derive(Debug, PartialEq)]
pub struct Summary {
    pub rows: usize,
    pub columns: Vec<String>,
    pub sums: Vec<(String, f64)>,
}

/// Split CSV text into records (RFC 4180: quoted fields may hold commas, quotes as
/// `""` and line breaks; CRLF or LF line ends; blank lines are skipped).
pub fn records(text: &str) -> Result<Vec<Vec<String>>, String> {
    let mut out = Vec::new();
    let mut rec: Vec<String> = Vec::new();
    let mut field = String::new();
    let (mut quoted, mut was_quoted, mut line) = (false, false, 1usize);
    let mut chars = text.chars().peekable();
    let end_record = |rec: &mut Vec<String>,
                      field: &mut String,
                      was_quoted: bool,
                      out: &mut Vec<Vec<String>>| {
        // A line with nothing on it is skipped (not a record of one empty field).
        if !(rec.is_empty() && field.is_empty() && !was_quoted) {
            rec.push(std::mem::take(field));
            out.push(std::mem::take(rec));
        }
    };
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted = false,
                '\n' => {
                    line += 1;
                    field.push(c);
                }
                _ => field.push(c),
            }
            continue;
        }
        match c {
            '"' if field.is_empty() && !was_quoted => {
                quoted = true;
                was_quoted = true;
            }
            '"' => return Err(format!("line {line}: a quote inside an unquoted field")),
            ',' => {
                rec.push(std::mem::take(&mut field));
                was_quoted = false;
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                end_record(&mut rec, &mut field, was_quoted, &mut out);
                was_quoted = false;
                line += 1;
            }
            _ if was_quoted => {
                return Err(format!("line {line}: text after a closing quote"));
            }
            _ => field.push(c),
        }
    }
    if quoted {
        return Err(format!("line {line}: unterminated quoted field"));
    }
    end_record(&mut rec, &mut field, was_quoted, &mut out);
    Ok(out)
}

/// Count the data rows of a CSV text with a header and sum its numeric columns.
pub fn summarize(text: &str) -> Result<Summary, String> {
    let recs = records(text)?;
    let Some((header, data)) = recs.split_first() else {
        return Err("empty input: want a CSV text with a header row".into());
    };
    let columns: Vec<String> = header.iter().map(|h| h.trim().to_string()).collect();
    if columns.iter().any(String::is_empty) {
        return Err("the header row has an empty column name".into());
    }
    let mut sums: Vec<Option<f64>> = vec![Some(0.0); columns.len()];
    for (i, r) in data.iter().enumerate() {
        if r.len() != columns.len() {
            return Err(format!(
                "row {} has {} fields, the header has {}",
                i + 1,
                r.len(),
                columns.len()
            ));
        }
        for (s, v) in sums.iter_mut().zip(r) {
            *s = s.and_then(|acc| {
                v.trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|x| x.is_finite())
                    .map(|x| acc + x)
            });
        }
    }
    Ok(Summary {
        rows: data.len(),
        sums: if data.is_empty() {
            vec![]
        } else {
            columns
                .iter()
                .zip(&sums)
                .filter_map(|(c, s)| s.map(|s| (c.clone(), s)))
                .collect()
        },
        columns,
    })
}

/// The runner's output line and exit code for one run.
pub fn run(run_id: &str, input: Option<&str>) -> (Value, i32) {
    let result = input
        .ok_or_else(|| "no input: set RUN_INPUT (a CSV text with a header row)".to_string())
        .and_then(summarize);
    match result {
        Ok(s) => {
            let sums: Map<String, Value> = s.sums.into_iter().map(|(c, v)| (c, json!(v))).collect();
            (
                json!({"run_id": run_id, "status": "succeeded", "rows": s.rows, "columns": s.columns, "sums": sums}),
                0,
            )
        }
        Err(e) => (json!({"run_id": run_id, "status": "failed", "error": e}), 1),
    }
}

/// `ROLE=runner`: arguments win over the environment.
pub fn main(args: &[String]) -> i32 {
    let run_id = args
        .first()
        .cloned()
        .or_else(|| std::env::var("RUN_ID").ok())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "local".into());
    let input = args
        .get(1)
        .cloned()
        .or_else(|| std::env::var("RUN_INPUT").ok());
    let (line, code) = run(&run_id, input.as_deref());
    println!("{line}");
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_records_like_rfc4180() {
        assert_eq!(
            records("a,b\r\n\"x, \"\"y\"\"\",2\n\n\"multi\nline\",\n").unwrap(),
            vec![
                vec!["a".to_string(), "b".into()],
                vec!["x, \"y\"".into(), "2".into()],
                vec!["multi\nline".into(), "".into()],
            ]
        );
        assert_eq!(records("").unwrap(), Vec::<Vec<String>>::new());
        assert_eq!(records("\"\"").unwrap(), vec![vec![String::new()]]);
        assert!(records("a,\"open\n").unwrap_err().contains("unterminated"));
        assert!(records("a,b\"c\n").unwrap_err().contains("line 1"));
        assert!(records("x\n\"a\"b\n").unwrap_err().contains("line 2"));
    }

    #[test]
    fn counts_rows_and_sums_numeric_columns() {
        let s = summarize("name,qty,price\nfoo,2,1.5\nbar,3,-0.5\n").unwrap();
        assert_eq!(s.rows, 2);
        assert_eq!(s.columns, ["name", "qty", "price"]);
        assert_eq!(
            s.sums,
            vec![("qty".to_string(), 5.0), ("price".into(), 1.0)]
        );
        let s = summarize("only,header").unwrap();
        assert_eq!((s.rows, s.sums.len()), (0, 0));
        assert!(summarize("a,b\n1\n")
            .unwrap_err()
            .contains("row 1 has 1 fields"));
        assert!(summarize("\n\n").unwrap_err().contains("empty input"));
        assert!(summarize("a,,c\n").unwrap_err().contains("empty column"));
    }

    #[test]
    fn run_prints_one_json_line_and_the_exit_code() {
        let (v, code) = run("r1", Some("a,b\n1,2\n3,4\n"));
        assert_eq!(code, 0);
        assert_eq!(
            v,
            json!({"run_id": "r1", "status": "succeeded", "rows": 2, "columns": ["a", "b"], "sums": {"a": 4.0, "b": 6.0}})
        );
        assert!(!v.to_string().contains('\n'));
        let (v, code) = run("r2", Some("a,b\n1\n"));
        assert_eq!((code, v["status"].as_str()), (1, Some("failed")));
        assert_eq!(v["run_id"], "r2");
        let (v, code) = run("r3", None);
        assert_eq!(code, 1);
        assert!(v["error"].as_str().unwrap().contains("RUN_INPUT"));
    }
}
