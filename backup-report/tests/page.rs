//! backup_report.html in a real browser: Debian's headless Chromium renders the
//! page of a healthy tree, a partial run and an anomaly; the tests assert on
//! the DOM it built (`--dump-dom`), on its layout at a phone's width, and on
//! screenshots in light and dark mode (saved under the target folder).

use backup_common::ResultRecord;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use test_harness::Tool;

const BIN: &str = env!("CARGO_BIN_EXE_backup-report");

fn chromium() -> PathBuf {
    std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("chromium"))
}

/// Chromium, headless, with a profile of its own (tests run in parallel).
fn browse(args: &[String]) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(chromium())
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .output()
        .expect("chromium (scripts/test.sh installs Debian's chromium package)");
    assert!(
        out.status.success(),
        "chromium {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The DOM Chromium built from the page.
fn dom(page: &Path) -> String {
    browse(&[
        "--window-size=1200,900".into(),
        "--dump-dom".into(),
        format!("file://{}", page.display()),
    ])
}

/// Whether the page's layout fits a screen `width` pixels wide: a copy with a
/// probe (the page itself has no script) paints a corner green when nothing is
/// wider than the window, magenta when something is; a screenshot at that
/// width (`--dump-dom` has a 500 px minimum window, a screenshot has not)
/// shows which. The probe looks again on every resize: the window gets its
/// size after the page has loaded.
fn fits(page: &Path, width: u32) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let probe = dir.path().join("probe.html");
    let html = fs::read_to_string(page).unwrap().replace(
        "</body>",
        "<div id=\"probe\" style=\"position:fixed;left:0;top:0;width:12px;height:12px;z-index:9\"></div>\
         <script>function probe() { document.getElementById('probe').style.background = \
         document.documentElement.scrollWidth > window.innerWidth ? 'rgb(255,0,255)' : 'rgb(0,255,0)' }\
         probe(); addEventListener('resize', probe); addEventListener('load', probe)</script></body>",
    );
    fs::write(&probe, html).unwrap();
    let (w, rgb) = screenshot(&probe, &format!("probe-{width}"), width, false);
    let i = ((4 * w + 4) * 3) as usize;
    match (rgb[i], rgb[i + 1], rgb[i + 2]) {
        (0, 255, 0) => true,
        (255, 0, 255) => false,
        other => panic!("the probe did not run: {other:?}"),
    }
}

/// A screenshot, saved for people to look at, and its pixels for the test.
fn screenshot(page: &Path, name: &str, width: u32, dark: bool) -> (u32, Vec<u8>) {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("page-screenshots");
    fs::create_dir_all(&dir).unwrap();
    let png = dir.join(format!("{name}.png"));
    let _ = fs::remove_file(&png);
    let mut args = vec![
        format!("--window-size={width},1100"),
        format!("--screenshot={}", png.display()),
    ];
    if dark {
        args.push("--force-dark-mode".into());
        args.push("--blink-settings=preferredColorScheme=0".into());
    }
    args.push(format!("file://{}", page.display()));
    browse(&args);
    let decoder = png::Decoder::new(std::io::BufReader::new(fs::File::open(&png).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.width, width);
    let channels = info.color_type.samples();
    let rgb = buf[..info.buffer_size()]
        .chunks(channels)
        .flat_map(|p| p[..3].to_vec())
        .collect();
    (info.width, rgb)
}

fn brightness((width, rgb): &(u32, Vec<u8>), x: u32, y: u32) -> u32 {
    let i = ((y * width + x) * 3) as usize;
    (u32::from(rgb[i]) + u32::from(rgb[i + 1]) + u32::from(rgb[i + 2])) / 3
}

/// One day's run in the tree: a dump (and a workflow export) of these sizes
/// appear and their records are reported; MinIO's record is a failure when
/// `minio_down`.
fn run_day(root: &Path, day: u32, pg_size: usize, minio_down: bool) {
    let mut records = String::new();
    for (component, prefix, ext, size) in [
        ("postgres", "arasul_db", "sql.gz", pg_size),
        ("n8n", "workflows", "json", 900 + day as usize),
    ] {
        let name = format!("{prefix}_202611{day:02}_020000.{ext}");
        let dir = root.join(component);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(&name), vec![1u8; size]).unwrap();
        fs::write(dir.join(format!("{name}.sha256")), "x").unwrap();
        let published = backup_common::publish::Published {
            path: format!("{component}/{name}").into(),
            file_name: name,
            size_bytes: size as u64,
            sha256: "ab".repeat(32),
        };
        let mut r = ResultRecord::success(component, &published);
        r.duration_seconds = u64::from(day % 5) + 2;
        records.push_str(&r.to_line());
        records.push('\n');
    }
    if minio_down {
        records.push_str(
            &ResultRecord::failed(
                "minio",
                "cannot list bucket <documents>: connection refused; check MINIO_ENDPOINT".into(),
            )
            .to_line(),
        );
        records.push('\n');
    }
    let file = root.join(".records");
    fs::write(&file, records).unwrap();
    let out = Tool::new(BIN)
        .env("BACKUP_DIR", root)
        .without("BACKUP_NOTIFY_URLS")
        .without("BACKUP_NOTIFY_URL")
        .without("BACKUP_SHRINK_WARN")
        .run(&[file.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
}

/// The page as it stands, copied aside under `name`.
fn keep_page(root: &Path, keep: &Path, name: &str) -> PathBuf {
    let to = keep.join(format!("{name}.html"));
    fs::copy(root.join("backup_report.html"), &to).unwrap();
    to
}

fn card<'a>(dom: &'a str, component: &str) -> &'a str {
    let id = dom
        .find(&format!("id=\"c-{component}\""))
        .unwrap_or_else(|| panic!("no card for {component}"));
    let start = dom[..id].rfind("<article").unwrap();
    let end = dom[start..].find("</article>").unwrap() + start;
    &dom[start..end]
}

#[test]
fn the_page_of_a_healthy_tree_a_partial_run_and_an_anomaly_renders_in_chromium() {
    let root = tempfile::tempdir().unwrap();
    let keep = tempfile::tempdir().unwrap();
    fs::create_dir_all(root.path().join("weekly/2026_W47")).unwrap();
    fs::create_dir_all(root.path().join("weekly/2026_W48")).unwrap();
    for day in 20..26 {
        run_day(root.path(), day, 15_000 + day as usize * 100, false);
    }
    let healthy = keep_page(root.path(), keep.path(), "healthy");
    run_day(root.path(), 26, 17_000, true);
    let partial = keep_page(root.path(), keep.path(), "partial");
    run_day(root.path(), 27, 1_200, false);
    let anomaly = keep_page(root.path(), keep.path(), "anomaly");

    // Healthy: completed, every component's card, charts drawn, the weeks.
    let d = dom(&healthy);
    assert!(d.contains("id=\"run-status\">completed</span>"), "{d}");
    assert!(card(&d, "postgres").contains("data-status=\"success\""));
    assert!(card(&d, "minio").contains("data-status=\"not-run\""));
    assert_eq!(
        card(&d, "postgres").matches("<polyline").count(),
        2,
        "size and duration"
    );
    assert_eq!(
        card(&d, "postgres").matches("<circle").count(),
        12,
        "6 runs, 2 charts"
    );
    assert!(
        d.contains("<li>2026_W48</li><li>2026_W47</li>")
            || d.contains("<li>2026_W48</li>\n<li>2026_W47</li>"),
        "{d}"
    );
    assert!(!d.contains("id=\"problems\""));

    // Partial: the failed component and its error, escaped, at the top too.
    let d = dom(&partial);
    assert!(d.contains("id=\"run-status\">partial</span>"));
    let minio = card(&d, "minio");
    assert!(minio.contains("data-status=\"failed\""), "{minio}");
    assert!(
        minio.contains("cannot list bucket &lt;documents&gt;: connection refused"),
        "{minio}"
    );
    assert!(d.contains("<li class=\"error\">minio: cannot list bucket &lt;documents&gt;"));

    // Anomaly: completed, yet the card and the top say what looks wrong.
    let d = dom(&anomaly);
    assert!(d.contains("id=\"run-status\">completed</span>"));
    let pg = card(&d, "postgres");
    assert!(pg.contains("class=\"card success anomaly\""), "{pg}");
    assert!(pg.contains("<p class=\"warning\">postgres: arasul_db_20261127_020000.sql.gz is 7% of the recent median"), "{pg}");
    assert!(d.contains("<li class=\"warning\">postgres: arasul_db_20261127"));
    // A phone: the layout is no wider than the screen, for every page.
    for page in [&healthy, &partial, &anomaly] {
        assert!(
            fits(page, 360),
            "{} is wider than a 360 px phone",
            page.display()
        );
    }

    // Screenshots: light and dark really differ where the page's background is.
    let light = screenshot(&anomaly, "anomaly-phone-light", 390, false);
    let dark = screenshot(&anomaly, "anomaly-phone-dark", 390, true);
    assert!(
        brightness(&light, 2, 2) > 200,
        "light background: {}",
        brightness(&light, 2, 2)
    );
    assert!(
        brightness(&dark, 2, 2) < 60,
        "dark background: {}",
        brightness(&dark, 2, 2)
    );
    screenshot(&partial, "partial-desktop", 1200, false);
    screenshot(&healthy, "healthy-desktop-dark", 1200, true);
}

#[test]
fn html_on_demand_draws_the_last_report_without_writing_a_new_one() {
    let root = tempfile::tempdir().unwrap();
    for day in 20..23 {
        run_day(root.path(), day, 15_000, day == 22);
    }
    let before = fs::read(root.path().join("backup_report.json")).unwrap();
    let out = Tool::new(BIN)
        .env("BACKUP_DIR", root.path())
        .run(&["--html", "-"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stdout.starts_with("<!DOCTYPE html>"));
    assert!(out.stdout.contains("id=\"run-status\">partial</span>"));
    let file = root.path().join("elsewhere.html");
    let out = Tool::new(BIN)
        .env("BACKUP_DIR", root.path())
        .run(&["--html", file.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(fs::read_to_string(&file)
        .unwrap()
        .contains("id=\"c-minio\" data-status=\"failed\""));
    assert_eq!(
        fs::read(root.path().join("backup_report.json")).unwrap(),
        before
    );
    let empty = tempfile::tempdir().unwrap();
    let out = Tool::new(BIN)
        .env("BACKUP_DIR", empty.path())
        .run(&["--html", "-"]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("backup_report.json; has a backup run yet?"),
        "{}",
        out.stderr
    );
}
