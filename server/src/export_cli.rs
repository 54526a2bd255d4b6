//! `moviola export PROJECT …`: renders a project's timeline to a file from the command line,
//! with a progress bar, through the same plan and exporter as the `export.render` job. It reads
//! the database and media folder directly, so it works with or without a running server.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use moviola_media::export::{self, OutputSpec};
use moviola_store::{AssetId, ProjectId, Store};

use crate::config::Config;

pub const USAGE: &str = "moviola export PROJECT [--preset youtube|shorts|tiktok|reels|instagram|square|master|web]
       [--container mp4|webm|mov] [--video-codec h264|h265|vp9|prores] [--audio-codec aac|opus|pcm]
       [--size WxH] [--fit pad|crop] [--quality draft|standard|high] [--video-kbps N]
       [-o FILE] [--config FILE] [--data-dir DIR] [--database-url URL]
PROJECT is a project id or name; FILE defaults to PROJECT-PRESET.EXT in this folder.";

/// Parses the export options; the rest of `args` are the common ones (handled by the caller).
pub fn parse(args: &[String]) -> anyhow::Result<(String, OutputSpec, Option<PathBuf>, Vec<String>)> {
    let mut spec = serde_json::Map::new();
    let (mut project, mut output, mut rest) = (None, None, Vec::new());
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().cloned().with_context(|| format!("{name} needs a value\n\n{USAGE}"));
        let key = match arg.as_str() {
            "--preset" => "preset",
            "--container" | "--format" => "container",
            "--video-codec" => "video_codec",
            "--audio-codec" => "audio_codec",
            "--fit" => "fit",
            "--quality" => "quality",
            "--video-kbps" => {
                let v: u32 = value(arg)?.parse().context("--video-kbps needs a number")?;
                spec.insert("video_bitrate_kbps".into(), v.into());
                continue;
            }
            "--size" => {
                let v = value(arg)?;
                let (w, h) = v.split_once('x').with_context(|| format!("--size takes WxH, not {v:?}"))?;
                spec.insert("width".into(), w.parse::<u32>().context("width")?.into());
                spec.insert("height".into(), h.parse::<u32>().context("height")?.into());
                continue;
            }
            "-o" | "--output" => {
                output = Some(PathBuf::from(value(arg)?));
                continue;
            }
            "--config" | "--data-dir" | "--database-url" | "--listen" => {
                rest.push(arg.clone());
                rest.push(value(arg)?);
                continue;
            }
            other if !other.starts_with('-') && project.is_none() => {
                project = Some(other.to_owned());
                continue;
            }
            other => bail!("unknown argument {other:?}\n\n{USAGE}"),
        };
        spec.insert(key.into(), value(arg)?.into());
    }
    let project = project.with_context(|| format!("which project?\n\n{USAGE}"))?;
    let spec: OutputSpec = serde_json::from_value(spec.into()).map_err(|e| anyhow::anyhow!("{e}\n\n{USAGE}"))?;
    Ok((project, spec, output, rest))
}

/// Renders the project.
pub async fn run(config: &Config, project: &str, spec: OutputSpec, output: Option<PathBuf>) -> anyhow::Result<()> {
    let store = Store::connect(&config.database_url, 1).await?;
    let found = match project.parse::<i64>() {
        Ok(id) => store.project_by_id(ProjectId(id)).await?.into_iter().collect(),
        Err(_) => store.projects_named(project).await?,
    };
    let project = match found.as_slice() {
        [p] => p.clone(),
        [] => bail!("no project {project:?}"),
        many => bail!(
            "{} projects are named {project:?}; give its id: {}",
            many.len(),
            many.iter().map(|p| p.id.to_string()).collect::<Vec<_>>().join(", ")
        ),
    };
    let stored = store.load_document(project.id).await?;
    let doc = moviola_actors::project::rebuild(&stored).map_err(|e| anyhow::anyhow!(e))?;
    let timeline = moviola_crdt::Timeline::read(&doc);
    if let Some(c) = timeline.placeholders().first() {
        bail!(
            "clip {} is still waiting for its job; export when it has its result, or remove it",
            c.id
        );
    }
    let plan = timeline.export_plan();
    if plan.duration <= 0 {
        bail!("the timeline of {:?} is empty: put clips on it before exporting", project.name);
    }
    let resolved = spec.resolve(&plan.settings).map_err(|e| anyhow::anyhow!(e))?;
    let mut paths = BTreeMap::new();
    for id in plan.assets() {
        let asset = match id.parse::<i64>() {
            Ok(n) => store.asset(AssetId(n)).await?,
            Err(_) => None,
        }
        .filter(|a| a.project_id == project.id)
        .with_context(|| format!("the timeline uses asset {id:?}, which is not an asset of this project"))?;
        paths.insert(id, config.media_dir.join(&asset.path));
    }
    store.close().await?;
    let preset = spec.preset.map(|p| p.name()).unwrap_or("custom");
    let output = output.unwrap_or_else(|| {
        let safe: String = project
            .name
            .chars()
            .map(|c| if c.is_alphanumeric() || c == '-' { c } else { '_' })
            .collect();
        PathBuf::from(format!("{safe}-{preset}.{}", resolved.container.ext()))
    });
    let scratch = std::env::temp_dir();
    eprintln!(
        "exporting {:?} ({:.1} s) to {} — {}×{} {:?}/{:?} in {:?}",
        project.name,
        plan.duration as f64 / moviola_crdt::time::TICKS_PER_SECOND as f64,
        output.display(),
        resolved.width,
        resolved.height,
        resolved.video_codec,
        resolved.audio_codec,
        resolved.container
    );
    let started = Instant::now();
    let mut bar = ProgressBar::new(started);
    let report = tokio::task::block_in_place(|| {
        export::export(
            &plan,
            &|id: &str| paths.get(id).cloned(),
            &resolved,
            &output,
            &scratch,
            &mut |done, total| {
                bar.draw(done, total);
                true
            },
        )
    })?;
    eprintln!();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "wrote {} ({} frames, {:.3} s) in {:.1} s ({:.1} frames/s)",
        output.display(),
        report.frames,
        report.duration_ms as f64 / 1000.0,
        secs,
        report.frames as f64 / secs.max(1e-9)
    );
    Ok(())
}

/// A one-line bar on stderr, redrawn at most ten times a second and at the end.
struct ProgressBar {
    started: Instant,
    last: Option<Instant>,
}

impl ProgressBar {
    fn new(started: Instant) -> ProgressBar {
        ProgressBar { started, last: None }
    }

    fn draw(&mut self, done: u64, total: u64) {
        if done < total && self.last.is_some_and(|t| t.elapsed().as_millis() < 100) {
            return;
        }
        self.last = Some(Instant::now());
        let frac = done as f64 / total.max(1) as f64;
        let width = 30;
        let filled = (frac * width as f64).round() as usize;
        let secs = self.started.elapsed().as_secs_f64();
        let fps = done as f64 / secs.max(1e-9);
        let eta = if done > 0 { (total - done) as f64 / fps } else { 0.0 };
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r[{}{}] {:>3.0}% {done}/{total} frames {fps:.1} fps ETA {}:{:02} ",
            "#".repeat(filled),
            " ".repeat(width - filled),
            frac * 100.0,
            (eta as u64) / 60,
            (eta as u64) % 60
        );
        let _ = err.flush();
    }
}
