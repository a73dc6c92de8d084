//! build: image tags (content, git, timestamp or fixed), pre-build commands and
//! `docker build`, skipped when a content-tagged image already exists.

use crate::config::{self, TagPolicy};
use crate::model::{Cmd, Error, Stage};
use crate::plan::digest::{self, Hasher};
use crate::plan::{Action, Guard, ImagePlan, Planner, Step};
use crate::tools::docker;

impl Planner<'_> {
    pub(in crate::plan) fn image_plan(&self, img: &config::Image) -> Result<ImagePlan, Error> {
        let root = &self.p.root;
        let mut skipped_inputs = vec![];
        let tag = match img.tag_policy {
            TagPolicy::Fixed => img.tag.clone().unwrap_or_default(),
            TagPolicy::Timestamp => {
                let t = humantime::format_rfc3339_seconds(self.o.now).to_string();
                t.chars().filter(char::is_ascii_digit).collect()
            }
            TagPolicy::Git => digest::git_tag(root, &img.inputs()).ok_or_else(|| {
                Error::usage(format!(
                    "image `{}`: tag_policy \"git\" but {} is not in a git work tree",
                    img.name,
                    root.display()
                ))
            })?,
            TagPolicy::Content => {
                let mut h = Hasher::default();
                for input in img.inputs() {
                    h.tree(root, &input).map_err(|e| {
                        Error::usage(format!(
                            "image `{}`: cannot hash input {}: {e}",
                            img.name,
                            input.display()
                        ))
                    })?;
                }
                h.part("target", img.target.as_deref().unwrap_or("").as_bytes());
                for (k, v) in &img.build_args {
                    h.part(k, v.as_bytes());
                }
                if let Some(pb) = &img.pre_build {
                    h.part("pre_build", pb.command.join("\0").as_bytes());
                }
                skipped_inputs = h.skipped().to_vec();
                format!("c-{}", &h.hex()[..12])
            }
        };
        // `dev` deploys an image with a sync rule as its dev variant (built from it).
        let tag = if self.o.job == crate::model::Job::Dev && img.sync.is_some() {
            crate::plan::sync::variant_dockerfile(self.p, img, "")?;
            crate::plan::sync::variant_tag(&tag)
        } else {
            tag
        };
        let repository = match self.p.push_registry() {
            Some(r) => format!("{r}/{}", img.repository()),
            None => img.repository().to_string(),
        };
        Ok(ImagePlan {
            name: img.name.clone(),
            reference: format!("{repository}:{tag}"),
            repository,
            tag,
            skipped_inputs,
        })
    }

    pub(in crate::plan) fn build(&mut self) {
        let budget = self.budget(Stage::Build);
        for (img, ip) in self.p.images.iter().zip(self.images.clone()) {
            // The dev variant (see plan/sync.rs): the image itself is built under its
            // own tag, then the variant from it.
            let variant =
                (self.o.job == crate::model::Job::Dev && img.sync.is_some()).then(|| ip.clone());
            let ip = match &variant {
                Some(v) => {
                    let base = v
                        .tag
                        .rsplit_once("-sync-")
                        .map_or(v.tag.as_str(), |(b, _)| b);
                    ImagePlan {
                        tag: base.to_string(),
                        reference: format!("{}:{base}", v.repository),
                        ..v.clone()
                    }
                }
                None => ip,
            };
            let cached = (img.tag_policy == TagPolicy::Content && !self.o.force).then(|| {
                Guard::ImageBuilt {
                    reference: ip.reference.clone(),
                    probe: docker::image_id(&ip.reference),
                }
            });
            let group = Some(img.name.clone());
            if let Some(pb) = &img.pre_build {
                let mut cmd =
                    Cmd::new(&pb.command[0], &pb.command[1..]).timeout(pb.timeout.0.min(budget));
                cmd.env = pb.env.clone();
                self.steps.push(Step {
                    stage: Stage::Build,
                    id: format!("pre-build/{}", img.name),
                    title: format!("pre-build {}", img.name),
                    action: Action::Run { cmd },
                    skip_if: cached.clone(),
                    group: group.clone(),
                    wave: 0,
                });
            }
            let labels = vec![
                (
                    "org.opencontainers.image.title".to_string(),
                    img.name.clone(),
                ),
                (
                    "dev.slipway.project".to_string(),
                    self.p.project.name.clone(),
                ),
            ];
            let cmd = docker::build(&docker::Build {
                reference: &ip.reference,
                dockerfile: &img.dockerfile(),
                context: &img.context,
                target: img.target.as_deref(),
                build_args: &img.build_args,
                labels: &labels,
                timeout: budget,
            });
            self.steps.push(Step {
                stage: Stage::Build,
                id: format!("build/{}", img.name),
                title: format!("build {}", ip.reference),
                action: Action::Run { cmd },
                skip_if: cached,
                group: group.clone(),
                wave: 0,
            });
            if let Some(v) = variant {
                let dockerfile = crate::plan::sync::variant_dockerfile(self.p, img, &ip.reference)
                    .unwrap_or_default();
                self.steps.push(Step {
                    stage: Stage::Build,
                    id: format!("build/{}-sync", img.name),
                    title: format!(
                        "build {} (dev variant: the sync helper runs the image's command)",
                        v.reference
                    ),
                    action: Action::Run {
                        cmd: crate::plan::sync::variant_build(&v.reference, dockerfile, budget),
                    },
                    skip_if: (!self.o.force).then(|| Guard::ImageBuilt {
                        reference: v.reference.clone(),
                        probe: docker::image_id(&v.reference),
                    }),
                    group,
                    wave: 0,
                });
            }
        }
    }
}
