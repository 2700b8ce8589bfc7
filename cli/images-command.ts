// `kubeforge images list`: the exact image refs a cluster runs, from kubeadm's tag table.
import { type Command, Option } from "commander";
import { clusterImages, type NodeRole } from "../config/images.js";
import { loadClusterFile } from "../config/load.js";
import { ROLES } from "../config/schema.js";
import { EVENT_VERSION } from "../workflow/events.js";
import { DEFAULT_FILE, FILE_FLAGS, FILE_HELP } from "./config-command.js";
import type { CliContext } from "./program.js";

export function addImagesCommands(program: Command, context: CliContext): void {
  const { io } = context;
  const images = program.command("images").description("The container images a cluster runs");

  images
    .command("list")
    .description("Print the exact image refs for the cluster's version and settings, one per line")
    .option(FILE_FLAGS, FILE_HELP, DEFAULT_FILE)
    .addOption(new Option("--role <role>", "only the images a node of this role needs").choices(ROLES))
    .action(async (options: { file: string; role?: NodeRole }) => {
      const { cluster } = await loadClusterFile(options.file, {
        env: io.env,
        homeDir: io.homeDir,
        cwd: io.cwd,
      });
      const { role } = options;
      const selected = clusterImages(cluster).filter((image) => !role || image.roles.includes(role));
      if (context.output === "json") {
        io.stdout.write(`${JSON.stringify({ v: EVENT_VERSION, type: "images.list", images: selected })}\n`);
        return;
      }
      io.stdout.write(selected.map((image) => `${image.ref}\n`).join(""));
    });
}
