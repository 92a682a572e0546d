// Sign in: with Microsoft (Entra ID, when the API's settings allow it) and, on the local host only,
// the development sign-in for a chosen project and role.

import { developmentOffer, signInDevelopment, signInMicrosoft } from "../auth.js";
import { fill, h, uid } from "../dom.js";

const ROLE_WORDS = {
  reader: "Reader: sees the project's exports",
  contributor: "Contributor: also creates, changes, resumes and deletes",
  owner: "Owner: as a contributor",
  admin: "Operator: every project",
};

export async function signInPage(ctx, { note, onSignedIn }) {
  const heading = h("h1", {}, "Sign in");
  const problem = h("div", { class: "problem", role: "alert", hidden: true });
  const fail = (error) => {
    fill(problem, h("p", {}, error.message || "Signing in failed. Try again."));
    problem.hidden = false;
  };
  fill(ctx.main, h("div", { class: "page narrow" }, heading, note ? h("p", { class: "note" }, note) : null, problem));
  ctx.titled(heading);
  const page = ctx.main.firstChild;
  page.append(h("p", {}, "Manage the continuous exports of your projects' signals to your own storage."));

  if (ctx.config.entra) {
    const button = h("button", { type: "button", class: "primary" }, "Sign in with Microsoft");
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        await signInMicrosoft(ctx.config.entra);
        onSignedIn();
      } catch (error) {
        fail({ message: "Signing in with Microsoft did not finish. Allow the sign-in window (popup), then try again." });
        button.disabled = false;
      }
    });
    page.append(h("section", { "aria-labelledby": "entra-heading" }, h("h2", { id: "entra-heading" }, "Your organization's account"), button));
  }

  const roles = await developmentOffer();
  if (!ctx.current()) return;
  if (roles) {
    const projectId = uid("project");
    const roleId = uid("role");
    const project = h("input", { id: projectId, name: "project", type: "text", autocomplete: "off", spellcheck: "false", "aria-describedby": `${projectId}-help` });
    const role = h(
      "select",
      { id: roleId, name: "role" },
      roles.map((r) => h("option", { value: r, selected: r === "contributor" }, ROLE_WORDS[r] || r)),
    );
    const submit = h("button", { type: "submit", class: "primary" }, "Sign in");
    const form = h(
      "form",
      { class: "stack", novalidate: true },
      h("div", { class: "field" }, h("label", { for: projectId }, "Project"), h("p", { class: "help", id: `${projectId}-help` }, "The project whose exports you manage."), project),
      h("div", { class: "field" }, h("label", { for: roleId }, "Role"), role),
      submit,
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      submit.disabled = true;
      try {
        await signInDevelopment(project.value.trim(), role.value);
        onSignedIn();
      } catch (error) {
        fail(error);
        submit.disabled = false;
      }
    });
    page.append(
      h(
        "section",
        { "aria-labelledby": "dev-heading" },
        h("h2", { id: "dev-heading" }, "Development sign-in"),
        h("p", {}, "The local host signs you in with a development token. It exists only on the local host, never in Azure."),
        form,
      ),
    );
  } else if (!ctx.config.entra) {
    page.append(
      h(
        "p",
        { class: "problem" },
        "Sign-in is not set up: the service needs the client id of its Microsoft Entra ID app registration (PORTAL_CLIENT_ID, or a client id in AUTH_AUDIENCE). Ask the team that runs it.",
      ),
    );
  }
}
