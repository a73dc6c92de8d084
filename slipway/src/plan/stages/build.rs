//! build: image tags (content, git, timestamp or fixed), pre-build commands and
//! `docker build`, skipped when a content-tagged image already exists.

use crate::config::{self, TagPolicy};
use crate::model::{Cmd, Error, Stage};
use crate::plan::digest::{self, Hasher};
use crate::plan::stages::build_waves;
use crate::plan::{Action, Guard, ImageBuilt, ImagePlan, ImagesBuilt, Planner, Step};
use crate::tools::docker;

/// What makes two pre-builds the same step: their command and environment.
type PreBuildKey = (Vec<String>, Vec<(String, String)>);

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
        let images = &self.p.images;
        let mut steps = vec![];
        // Lanes run at the same time; a lane's steps (its units, one after another) in
        // order: see build_waves.
        for lane in build_waves::lanes(images, build_waves::BUILD_CONCURRENCY) {
            let Some(first) = lane.units.first().and_then(|u| u.first()) else {
                continue;
            };
            let group = Some(images[*first].name.clone());
            for unit in &lane.units {
                let mut pre_built = vec![];
                for &i in unit {
                    self.build_image(i, unit, &group, &mut pre_built, &mut steps);
                }
            }
        }
        self.steps.extend(steps);
    }

    /// An image with a content tag that exists is not built again: its reference
    /// and the probe that says so.
    fn built(&self, img: &config::Image, ip: &ImagePlan) -> Option<(String, Cmd)> {
        (img.tag_policy == TagPolicy::Content && !self.o.force)
            .then(|| (ip.reference.clone(), docker::image_id(&ip.reference)))
    }

    /// One image of a lane's unit: its pre-build (once per unit and command), its
    /// build, and for `dev` its sync variant.
    fn build_image(
        &self,
        i: usize,
        unit: &[usize],
        group: &Option<String>,
        pre_built: &mut Vec<PreBuildKey>,
        steps: &mut Vec<Step>,
    ) {
        let budget = self.budget(Stage::Build);
        let img = &self.p.images[i];
        // The dev variant (see plan/sync.rs): the image itself is built under
        // its own tag, then the variant from it.
        let variant = (self.o.job == crate::model::Job::Dev && img.sync.is_some())
            .then(|| self.images[i].clone());
        let base_ip;
        let ip = match &variant {
            Some(v) => {
                let base = v
                    .tag
                    .rsplit_once("-sync-")
                    .map_or(v.tag.as_str(), |(b, _)| b);
                base_ip = ImagePlan {
                    tag: base.to_string(),
                    reference: format!("{}:{base}", v.repository),
                    ..v.clone()
                };
                &base_ip
            }
            None => &self.images[i],
        };
        let cached = self
            .built(img, ip)
            .map(|(reference, probe)| Guard::ImageBuilt(ImageBuilt { reference, probe }));
        if let Some(pb) = &img.pre_build {
            let key = build_waves::pre_build_key(pb);
            if !pre_built.contains(&key) {
                steps.push(self.pre_build(i, unit, &key, cached.clone(), group));
                pre_built.push(key);
            }
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
        steps.push(Step {
            stage: Stage::Build,
            id: format!("build/{}", img.name),
            title: format!("build {}", ip.reference),
            action: Action::run(cmd),
            skip_if: cached,
            group: group.clone(),
            wave: 0,
        });
        if let Some(v) = variant {
            let dockerfile = crate::plan::sync::variant_dockerfile(self.p, img, &ip.reference)
                .unwrap_or_default();
            steps.push(Step {
                stage: Stage::Build,
                id: format!("build/{}-sync", img.name),
                title: format!(
                    "build {} (dev variant: the sync helper runs the image's command)",
                    v.reference
                ),
                action: Action::run(crate::plan::sync::variant_build(
                    &v.reference,
                    dockerfile,
                    budget,
                )),
                skip_if: (!self.o.force).then(|| {
                    Guard::ImageBuilt(ImageBuilt {
                        reference: v.reference.clone(),
                        probe: docker::image_id(&v.reference),
                    })
                }),
                group: group.clone(),
                wave: 0,
            });
        }
    }

    /// The pre-build of image `i`, one step for every image of the unit with the
    /// same command (`key`): skipped when all of them are built.
    fn pre_build(
        &self,
        i: usize,
        unit: &[usize],
        key: &PreBuildKey,
        cached: Option<Guard>,
        group: &Option<String>,
    ) -> Step {
        let (images, budget) = (&self.p.images, self.budget(Stage::Build));
        let (img, pb) = (
            &images[i],
            images[i].pre_build.as_ref().expect("a pre-build"),
        );
        // Every image of the unit with this pre-build.
        let sharing: Vec<usize> = unit
            .iter()
            .copied()
            .filter(|j| {
                images[*j]
                    .pre_build
                    .as_ref()
                    .is_some_and(|p| build_waves::pre_build_key(p) == *key)
            })
            .collect();
        let timeout = sharing
            .iter()
            .filter_map(|j| images[*j].pre_build.as_ref())
            .map(|p| p.timeout.0)
            .max()
            .unwrap_or(pb.timeout.0);
        let mut cmd = Cmd::new(&pb.command[0], &pb.command[1..]).timeout(timeout.min(budget));
        cmd.env = pb.env.clone();
        let (title, skip_if) = if sharing.len() < 2 {
            (format!("pre-build {}", img.name), cached)
        } else {
            let names: Vec<&str> = sharing.iter().map(|j| images[*j].name.as_str()).collect();
            let guards: Option<Vec<(String, Cmd)>> = sharing
                .iter()
                .map(|j| self.built(&images[*j], &self.images[*j]))
                .collect();
            (
                format!(
                    "pre-build {} (one step: the same command)",
                    names.join(", ")
                ),
                guards.map(|g| {
                    let (references, probes) = g.into_iter().unzip();
                    Guard::ImagesBuilt(ImagesBuilt { references, probes })
                }),
            )
        };
        Step {
            stage: Stage::Build,
            id: format!("pre-build/{}", img.name),
            title,
            action: Action::run(cmd),
            skip_if,
            group: group.clone(),
            wave: 0,
        }
    }
}
