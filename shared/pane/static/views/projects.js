// The projects the signed-in person has a role in; one project opens at once.

import { api } from "../api.js";
import { session } from "../auth.js";
import { fill, h, route, uid } from "../dom.js";

export async function projectsPage(ctx) {
  const grants = session.grants;
  if (!grants.operator && grants.projects.length === 1) {
    ctx.go(route("p", grants.projects[0]));
    return;
  }
  const heading = h("h1", {}, "Projects");
  const list = h("ul", { class: "links" });
  const page = h("div", { class: "page narrow" }, heading, list);
  fill(ctx.main, page);
  ctx.titled(heading);
  let projects = grants.projects;
  if (grants.operator) {
    try {
      const { data } = await api.listAll();
      projects = [...new Set([...projects, ...data.value.map((item) => item.projectId)])].sort();
    } catch (error) {
      page.append(h("p", { class: "problem", role: "alert" }, error.message));
    }
    const id = uid("open");
    const input = h("input", { id, type: "text", autocomplete: "off", spellcheck: "false" });
    const form = h("form", { class: "inline" }, h("label", { for: id }, "Open a project"), input, h("button", { type: "submit" }, "Open"));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      if (input.value.trim()) ctx.go(route("p", input.value.trim()));
    });
    page.append(form);
  }
  if (!ctx.current()) return;
  if (!projects.length) {
    list.replaceWith(h("p", {}, "You have no role in any project yet. Ask the project's owner for one (Exports.Read.<project> or Exports.Write.<project>)."));
    return;
  }
  fill(list, projects.map((project) => h("li", {}, h("a", { href: route("p", project) }, project))));
}
