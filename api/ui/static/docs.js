// Swagger UI for /docs, from the vendored bundle (no CDN).
window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true,
  validatorUrl: null,  // the default badge would call an outside validator
  presets: [SwaggerUIBundle.presets.apis], layout: "BaseLayout" });
